"""PNG's chunk layout: writing a chunk, walking a file from IHDR to IEND and checking each CRC, without the pixels."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR's colour types that carry an alpha channel (grey + alpha, RGBA); a tRNS chunk adds one to the others.
ALPHA_COLOUR_TYPES = {4, 6}
# Width, height, bit depth, colour type, compression, filter and interlace methods.
IHDR_LENGTH = 13


class MalformedPNG(ValueError):
    """The bytes are not a PNG whose chunks run whole and intact from IHDR to IEND."""


@dataclass(frozen=True)
class Chunk:
    """One chunk's type and where it lies in the file: `start` at its length field, `end` just past its CRC."""

    kind: bytes
    start: int
    end: int

    @property
    def body_start(self) -> int:
        """Where the chunk's data begins (after its length and type)."""
        return self.start + 8


def encode(kind: bytes, body: bytes) -> bytes:
    """One chunk as it is written: length, type, data and the CRC of type and data."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def chunks(data: bytes | memoryview) -> Iterator[Chunk]:
    """Yield the chunks from IHDR to IEND in order; raise MalformedPNG where the layout breaks (CRCs unchecked).

    Bytes after IEND are left alone: they are not part of the image, and some encoders leave padding there.
    """
    if bytes(data[:len(SIGNATURE)]) != SIGNATURE:
        raise MalformedPNG("no PNG signature")
    pos = len(SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise MalformedPNG("the file ends before IEND")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise MalformedPNG(f"the {kind!r} chunk runs past the end of the file")
        if (pos == len(SIGNATURE)) != (kind == b"IHDR"):
            raise MalformedPNG("IHDR is not the first chunk")
        yield Chunk(kind, pos, end)
        if kind == b"IEND":
            return
        pos = end


def check_chunks_and_read_alpha(data: bytes) -> bool:
    """Raise MalformedPNG unless every chunk from IHDR to IEND arrived intact; return whether it has alpha.

    A CRC per chunk proves the bytes are the ones the encoder wrote, which a decoder alone does not: fast decoders
    skip the CRCs, and a flipped bit inside the compressed pixels can still inflate to a wrong, whole-looking image.
    """
    view = memoryview(data)
    alpha = False
    for chunk in chunks(view):
        (crc,) = struct.unpack_from(">I", view, chunk.end - 4)
        if zlib.crc32(view[chunk.start + 4:chunk.end - 4]) != crc:
            raise MalformedPNG(f"the {chunk.kind!r} chunk's CRC does not match")
        if chunk.kind == b"IHDR":
            if chunk.end - chunk.start != 12 + IHDR_LENGTH:
                raise MalformedPNG("IHDR is not 13 bytes long")
            alpha = view[chunk.body_start + 9] in ALPHA_COLOUR_TYPES
        alpha = alpha or chunk.kind == b"tRNS"
    return alpha
