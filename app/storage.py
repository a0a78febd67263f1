"""Image files on disk: generated names, atomic writes, lookups by stored name only."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from app.images import EXTENSION_BY_MIME


def new_file_name(mime_type: str) -> str:
    """Return a fresh relative name like 'ab/ab12….png'; never derived from the prompt."""
    token = uuid.uuid4().hex
    return f"{token[:2]}/{token}{EXTENSION_BY_MIME.get(mime_type, '.bin')}"


def write_atomically(media_root: str, file_name: str, data: bytes) -> Path:
    """Write bytes to a temp file in the target folder, fsync, then rename, so readers never see half a file."""
    path = Path(media_root) / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def delete_file(media_root: str, file_name: str | None) -> None:
    """Remove a stored file if it is there."""
    if file_name:
        (Path(media_root) / file_name).unlink(missing_ok=True)
