"""Files on a local disk under MEDIA_ROOT: temp file, fsync, rename, so readers never see half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from app.media_store.base import FileMissing, StoredFile, StoreUnavailable


class LocalStore:
    """MEDIA_ROOT on this host's disk; served through the app's own routes."""

    name = "local"

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """Where a key lives on disk."""
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write to a temp file in the target folder, fsync, then rename into place."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise StoreUnavailable(f"cannot write under {self.root}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StoreUnavailable(f"cannot write {key}: {exc}") from exc
            raise

    def open(self, key: str) -> StoredFile:
        """Open the file for reading."""
        try:
            handle = self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileMissing(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {key}: {exc}") from exc
        return StoredFile(handle, os.fstat(handle.fileno()).st_size)

    def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot delete {key}: {exc}") from exc

    def size(self, key: str) -> int | None:
        """The file's size, or None if there is no such file."""
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def url(self, key: str, content_type: str, download_name: str | None = None) -> str | None:
        """Only the app can serve a file from its own disk."""
        return None

    def check(self) -> str:
        """MEDIA_ROOT is (or can be made) a directory this process can write: a small file is written and removed."""
        if self.root.exists() and not self.root.is_dir():
            return "not a directory"
        try:
            # Created as the first stored image would create it: a fresh install has none yet, and refusing
            # traffic until then would mean no image is ever made.
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return "missing"
        try:
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".readyz-") as probe:
                probe.write(b"ok")
                probe.flush()
        except OSError:
            return "not writable"
        return "ok"
