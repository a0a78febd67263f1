"""The storage interface every file access goes through, and the errors it raises."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from app.media_store.content_types import extension_of

CHUNK = 256 * 1024


class StoreError(RuntimeError):
    """The store refused or failed an operation; the message is for logs, never for a page."""


class StoreUnavailable(StoreError):
    """The store could not be reached, timed out or answered 5xx: worth trying again later."""


class FileMissing(StoreError):
    """No file is stored under that key."""


@dataclass
class StoredFile:
    """An open stored file: read it in chunks, then close it."""

    stream: BinaryIO
    size: int

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes in pieces, closing it at the end (or when the reader stops early)."""
        try:
            while chunk := self.stream.read(size):
                yield chunk
        finally:
            self.stream.close()

    def close(self) -> None:
        """Release the file or connection."""
        self.stream.close()


class MediaStore(Protocol):
    """A place for image files, addressed by the random names new_file_name gives them."""

    name: str  # what a row's `storage` column says: 'local' or 's3'

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store the whole file under key; readers see the old state or all of it, never part."""

    def open(self, key: str) -> StoredFile:
        """Open the file for streaming; FileMissing if there is none."""

    def delete(self, key: str) -> None:
        """Remove the file; a file already gone is fine."""

    def size(self, key: str) -> int | None:
        """The stored file's size in bytes, or None if there is none."""

    def url(self, key: str, content_type: str, download_name: str | None = None) -> str | None:
        """A URL the browser may fetch the file from directly, or None when only the app can serve it."""

    def check(self) -> str:
        """'ok' if the store can take a file now, else a short reason for /readyz (no URLs, paths or errors)."""


def new_file_name(mime_type: str) -> str:
    """Return a fresh relative name like 'ab/ab12….png'; never derived from the prompt."""
    token = uuid.uuid4().hex
    return f"{token[:2]}/{token}{extension_of(mime_type)}"
