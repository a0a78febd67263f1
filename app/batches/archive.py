"""A batch's images as a ZIP streamed to the client while it is built, never held whole in memory."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from flask import Response

from app.images import EXTENSION_BY_MIME
from app.models import Generation

CHUNK = 256 * 1024


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


def prompt_slug(prompt: str) -> str:
    """'a-red-fox': a few safe words of the prompt, for file names ('image' when none are left)."""
    words = "".join(c if c.isalnum() else "-" for c in prompt.lower()[:40]).strip("-")
    return "-".join(part for part in words.split("-") if part) or "image"


def file_extension(generation: Generation) -> str:
    """The stored file's real type as an extension."""
    return EXTENSION_BY_MIME.get(generation.mime_type or "", ".bin")


def archive_name(generation: Generation) -> str:
    """'01-a-red-fox.png': prompt order, a few safe words of the prompt, the file's real type."""
    return f"{generation.position + 1:02d}-{prompt_slug(generation.prompt)}{file_extension(generation)}"


def stream_zip(files: list[tuple[str, Path]]) -> Iterator[bytes]:
    """Yield a ZIP of (name in archive, path on disk) pairs chunk by chunk; missing files are skipped."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for name, path in files:
            if not path.is_file():
                continue
            with path.open("rb") as source, archive.open(name, mode="w", force_zip64=True) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield from pipe.drain()
            yield from pipe.drain()
    yield from pipe.drain()


def batch_zip_response(batch_id: int, generations: list[Generation], media_root: str) -> Response:
    """The streaming download of a batch's images."""
    files = [(archive_name(g), Path(media_root) / g.file_name) for g in generations if g.file_name]
    return Response(stream_zip(files), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="batch-{batch_id}.zip"'})
