"""Images as a ZIP (a batch's, a gallery selection, an account's export), streamed while it is built, never held
whole in memory."""

from __future__ import annotations

import itertools
import logging
import struct
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Protocol

from flask import Response, abort

from app.media_store.base import FileMissing, MediaStore, StoredFile, StoreError
from app.media_store.content_types import extension_of
from app.media_store.stores import Stores
from app.models import Generation

log = logging.getLogger(__name__)


class _Pipe:
    """A write-only, unseekable file: zipfile then writes data descriptors, so output can leave at once."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        """Hand over what was written so far."""
        chunks, self.chunks = self.chunks, []
        yield from chunks


# An archive entry: its name, or a ZipInfo that also dates it.
Entry = str | zipfile.ZipInfo


class Chunked(Protocol):
    """What a ZIP entry is read from: a stored file, or bytes made on the way (a manifest)."""

    def chunks(self) -> Iterator[bytes]:
        """The entry's bytes in pieces."""


def prompt_slug(prompt: str) -> str:
    """'a-red-fox': a few safe words of the prompt, for file names ('image' when none are left)."""
    words = "".join(c if c.isalnum() else "-" for c in prompt.lower()[:40]).strip("-")
    return "-".join(part for part in words.split("-") if part) or "image"


def file_extension(generation: Generation) -> str:
    """The stored file's real type as an extension."""
    return extension_of(generation.mime_type)


def archive_name(generation: Generation) -> str:
    """'01-a-red-fox.png': prompt order, a few safe words of the prompt, the file's real type."""
    return f"{generation.position + 1:02d}-{prompt_slug(generation.prompt)}{file_extension(generation)}"


# The extended-timestamp field ("UT"): its id, the size of what follows, and a flag saying a modification time does.
_EXTENDED_TIMESTAMP = struct.Struct("<HHBl")
_MODIFIED = 1


def dated_entry(name: str, when: datetime) -> zipfile.ZipInfo:
    """An archive entry dated when its image was made. The ZIP's own date field has no time zone, so it holds UTC,
    and the extended-timestamp field the exact instant, which unzip, 7-Zip and desktop archivers show in local time."""
    utc = when.astimezone(UTC)
    info = zipfile.ZipInfo(name, date_time=utc.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # a plain file, readable by all
    info.extra = _EXTENDED_TIMESTAMP.pack(0x5455, _EXTENDED_TIMESTAMP.size - 4, _MODIFIED, int(utc.timestamp()))
    return info


def made_at(generation: Generation) -> datetime:
    """When the image was finished (when it was asked for, for rows that never recorded it)."""
    return generation.finished_at or generation.created_at


def stream_zip(entries: Iterable[tuple[Entry, Chunked]]) -> Iterator[bytes]:
    """Yield a ZIP of (entry or name in archive, its bytes) pairs chunk by chunk, one file open at a time."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for info, stored in entries:
            with archive.open(info, mode="w", force_zip64=True) as target:
                for chunk in stored.chunks():
                    target.write(chunk)
                    yield from pipe.drain()
            yield from pipe.drain()
    yield from pipe.drain()


def opened(files: Iterable[tuple[Entry, MediaStore, str]]) -> Iterator[tuple[Entry, StoredFile]]:
    """Open each file as its turn comes; one whose file is gone is left out."""
    for info, store, key in files:
        try:
            yield info, store.open(key)
        except FileMissing:
            log.warning("ZIP: %s is missing from %s; left out", key, store.name)


def _guarded(chunks: Iterator[bytes], download_name: str) -> Iterator[bytes]:
    """Once the download has started its status is sent: a store failing now can only cut it short, logged."""
    try:
        yield from chunks
    except StoreError as exc:
        log.warning("%s cut short: %s", download_name, exc)


def zip_response(named: list[tuple[str, Generation]], download_name: str, stores: Stores) -> Response:
    """The streaming download of (name in archive, image) pairs, read from whichever store holds each one."""
    return streamed_zip(opened([(dated_entry(name, made_at(g)), stores.get(g.storage), g.file_name)
                                for name, g in named if g.file_name]), download_name)


def streamed_zip(entries: Iterator[tuple[Entry, Chunked]], download_name: str) -> Response:
    """The streaming download of these entries; 404 when there are none."""
    # The first file is opened now, so a store that is down answers an error page instead of a broken download.
    first = next(entries, None)
    if first is None:
        abort(404)
    return Response(_guarded(stream_zip(itertools.chain([first], entries)), download_name), mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{download_name}"'})


def batch_zip_response(batch_id: int, generations: list[Generation], stores: Stores) -> Response:
    """The streaming download of a batch's images, named in prompt order."""
    return zip_response([(archive_name(g), g) for g in generations], f"batch-{batch_id}.zip", stores)


def selection_name(generation: Generation) -> str:
    """'1234-a-red-fox.png': images of several batches, kept apart by their ids."""
    return f"{generation.id}-{prompt_slug(generation.prompt)}{file_extension(generation)}"


def selection_zip_response(generations: list[Generation], stores: Stores) -> Response:
    """The streaming download of images picked in the gallery, in gallery order."""
    return zip_response([(selection_name(g), g) for g in generations], f"images-{len(generations)}.zip", stores)
