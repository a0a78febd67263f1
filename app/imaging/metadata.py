"""Generation metadata carried inside image files, in the AUTOMATIC1111 "parameters" form other tools read."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass

from PIL import Image

from app.imaging import png_chunks
from app.providers.options import OPTION_FIELDS, GenerationOptions

PARAMETERS_KEY = "parameters"

PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")

JPEG_SOI = b"\xff\xd8"
JPEG_SOS = 0xDA
JPEG_APP0 = 0xE0
JPEG_APP1 = 0xE1
# Markers that stand alone, without a length field (TEM and RST0-7); legal but rare before SOS.
JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
EXIF_HEADER = b"Exif\x00\x00"
JPEG_MAX_SEGMENT = 0xFFFF  # the length field is 16 bits and counts itself

TAG_ORIENTATION = 0x0112
TAG_EXIF_IFD = 0x8769
TAG_EXIF_VERSION = 0x9000
TAG_USER_COMMENT = 0x9286
TIFF_SHORT, TIFF_LONG, TIFF_UNDEFINED = 3, 4, 7
UNICODE_PREFIX = b"UNICODE\x00"
ASCII_PREFIX = b"ASCII\x00\x00\x00"

WEBP_FLAG_ALPHA = 0x10
WEBP_FLAG_EXIF = 0x08


@dataclass(frozen=True)
class ImageParameters:
    """The settings that produced one image, as recorded in its file."""

    prompt: str
    options: GenerationOptions
    seed: int | None  # the seed the image was made with, which may differ from the requested one
    width: int
    height: int
    software: str = "Image Generator"
    operation: str | None = None  # what made it from another image (app/providers/operations.py), if anything
    source_id: int | None = None  # the image it was made from


def _quote(value: str) -> str:
    """Quote a value the way AUTOMATIC1111 does, so its "Key: value, …" parser cannot split inside it."""
    # A1111 quotes on comma, newline and colon; a double quote is added because an unquoted value that
    # starts with one would be mistaken for a quoted value by the same parser.
    if any(char in value for char in ',\n:"'):
        return json.dumps(value, ensure_ascii=False)
    return value


def _format_number(value: float) -> str:
    """Write 4.0 as "4" and 4.5 as "4.5", like A1111 shows its CFG scale."""
    return f"{value:g}"


def parameters_text(p: ImageParameters) -> str:
    """Render the parameters as A1111 infotext: prompt, optional "Negative prompt:" line, one settings line."""
    options = p.options
    settings = {"Seed": None if p.seed is None else str(p.seed), "Size": f"{p.width}x{p.height}"}
    for option in OPTION_FIELDS:
        value = getattr(options, option.name)
        if option.metadata["infotext"] and value is not None:
            settings[option.metadata["infotext"]] = _format_number(value) if isinstance(value, float) else str(value)
    if p.operation:
        settings["Operation"] = p.operation
        settings["Source image"] = None if p.source_id is None else str(p.source_id)
    settings["Software"] = p.software
    lines = [p.prompt]
    if options.negative_prompt:
        lines.append(f"Negative prompt: {options.negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in settings.items() if value is not None))
    return "\n".join(lines)


def embed_parameters(data: bytes, mime_type: str, text: str) -> bytes:
    """Return the image with text embedded as metadata, pixels untouched; unchanged if it cannot be done."""
    embedders = {"image/png": _embed_png, "image/jpeg": _embed_jpeg, "image/jpg": _embed_jpeg,
                 "image/webp": _embed_webp}
    embed = embedders.get(mime_type.split(";", 1)[0].strip().lower())
    if embed is None:
        return data
    try:
        result = embed(data, text)
    except Exception:  # metadata is a nicety: a malformed file must never cost the user the image itself
        return data
    return data if result is None else result


def read_parameters(data: bytes) -> str | None:
    """Read the embedded text back through Pillow: PNG text chunk, else EXIF UserComment; None if absent."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            chunks = getattr(image, "text", None)  # only PNG has it; it also finds chunks after IDAT
            if chunks and PARAMETERS_KEY in chunks:
                return str(chunks[PARAMETERS_KEY])
            exif = image.getexif()
            comment = exif.get_ifd(TAG_EXIF_IFD).get(TAG_USER_COMMENT)
            return _decode_user_comment(comment, exif.endian or ">")
    except Exception:  # a file Pillow cannot read simply has no parameters for us
        return None


def _decode_user_comment(value: object, endian: str) -> str | None:
    """Decode an EXIF UserComment from its 8-byte character-code prefix."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes) or len(value) < 8:
        return None
    prefix, body = value[:8], value[8:]
    if prefix == UNICODE_PREFIX:
        # The spec leaves UTF-16 byte order open; a BOM wins, otherwise follow the TIFF header like exiftool.
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16")
        return body.decode("utf-16-be" if endian == ">" else "utf-16-le")
    if prefix == ASCII_PREFIX:
        return body.decode("ascii", errors="replace").rstrip("\x00")
    return body.decode("utf-8", errors="replace").rstrip("\x00")


# --- PNG ----------------------------------------------------------------------------------------


def _is_parameters_chunk(view: memoryview, chunk: png_chunks.Chunk) -> bool:
    """Tell whether a chunk is a text chunk (any of the three kinds) keyed "parameters"."""
    if chunk.kind not in PNG_TEXT_CHUNKS:
        return False
    # A keyword is at most 79 bytes and ends with a NUL: only that much of the chunk is read.
    keyword = bytes(view[chunk.body_start:min(chunk.end - 4, chunk.body_start + 80)])
    return keyword.split(b"\x00", 1)[0] == PARAMETERS_KEY.encode()


def _embed_png(data: bytes, text: str) -> bytes | None:
    """Insert an uncompressed iTXt "parameters" chunk right after IHDR, dropping any earlier one."""
    # Keyword, compression flag and method (0: uncompressed), empty language tag and translated keyword.
    body = PARAMETERS_KEY.encode() + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
    view = memoryview(data)
    try:
        found = list(png_chunks.chunks(view))
    except png_chunks.MalformedPNG:
        return None
    # Views, not slices: the pixel chunks (most of the file) are copied once, by the join, CRCs included.
    out: list[bytes | memoryview] = [view[:found[0].start]]
    for chunk in found:
        if not _is_parameters_chunk(view, chunk):
            out.append(view[chunk.start:chunk.end])
        if chunk.kind == b"IHDR":
            out.append(png_chunks.encode(b"iTXt", body))
    out.append(view[found[-1].end:])  # whatever trails IEND is not ours to judge
    return b"".join(out)


# --- EXIF (shared by JPEG and WebP) -------------------------------------------------------------


def _ifd(entries: list[bytes]) -> bytes:
    """Serialize a big-endian IFD from ready-made 12-byte entries, with no next IFD."""
    return struct.pack(">H", len(entries)) + b"".join(entries) + struct.pack(">I", 0)


def _exif_tiff(text: str, orientation: int | None = None) -> bytes:
    """Build a minimal big-endian TIFF: IFD0 pointing to an Exif IFD that holds the UserComment."""
    # Big-endian with UTF-16BE is what A1111 writes (via piexif) and what its reader assumes.
    comment = UNICODE_PREFIX + text.encode("utf-16-be")
    ifd0_entries = []
    if orientation is not None:
        ifd0_entries.append(struct.pack(">HHIHH", TAG_ORIENTATION, TIFF_SHORT, 1, orientation, 0))
    exif_ifd_offset = 8 + 2 + 12 * (len(ifd0_entries) + 1) + 4
    ifd0_entries.append(struct.pack(">HHII", TAG_EXIF_IFD, TIFF_LONG, 1, exif_ifd_offset))
    comment_offset = exif_ifd_offset + 2 + 12 * 2 + 4
    exif_ifd = _ifd([
        struct.pack(">HHI4s", TAG_EXIF_VERSION, TIFF_UNDEFINED, 4, b"0232"),  # mandatory in an Exif IFD
        struct.pack(">HHII", TAG_USER_COMMENT, TIFF_UNDEFINED, len(comment), comment_offset),
    ])
    return b"MM\x00\x2a" + struct.pack(">I", 8) + _ifd(ifd0_entries) + exif_ifd + comment


def _utf16_size(text: str) -> int:
    """Count the bytes text takes in UTF-16."""
    return len(text.encode("utf-16-be"))


def _shorten_utf16(text: str, max_bytes: int) -> str:
    """Cut text to max_bytes of UTF-16, keeping its last line (the settings) and marking the cut with "…"."""
    if _utf16_size(text) <= max_bytes:
        return text
    marker = "…"
    head, newline, last_line = text.rpartition("\n")
    # Seed, size and model matter more for provenance than the end of a huge prompt, so the cut goes
    # into the prompt; only a settings line too long to fit on its own is cut itself.
    suffix = marker + newline + last_line
    if not newline or _utf16_size(suffix) > max_bytes // 2:
        head, suffix = text, marker
    room = max_bytes - _utf16_size(suffix)
    # Cut on a 2-byte boundary; "ignore" then drops a high surrogate left without its partner.
    kept = head.encode("utf-16-be")[:room - room % 2].decode("utf-16-be", errors="ignore")
    return kept + suffix


def _exif_orientation(payload: bytes) -> int | None:
    """Read Orientation from an existing Exif payload, so replacing the segment does not turn the picture."""
    exif = Image.Exif()
    try:
        exif.load(payload)
        orientation = exif.get(TAG_ORIENTATION)
    except Exception:  # an unreadable old segment is replaced anyway; only its orientation is lost
        return None
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None


# --- JPEG ---------------------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> tuple[list[bytes], bytes] | None:
    """Split a JPEG into its marker segments before SOS (SOI excluded) and the rest, scan data included."""
    if not data.startswith(JPEG_SOI):
        return None
    segments, pos = [], len(JPEG_SOI)
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker; optional, so it is not kept
            pos += 1
        elif marker == JPEG_SOS:
            return segments, data[pos:]
        elif marker in JPEG_STANDALONE:
            segments.append(data[pos:pos + 2])
            pos += 2
        else:
            (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
            if length < 2 or pos + 2 + length > len(data):
                return None
            segments.append(data[pos:pos + 2 + length])
            pos += 2 + length
    return None


def _is_exif_segment(segment: bytes) -> bool:
    """Tell whether a segment is an APP1 Exif segment (as opposed to, say, APP1 XMP)."""
    return segment[1] == JPEG_APP1 and segment[4:10] == EXIF_HEADER


def _embed_jpeg(data: bytes, text: str) -> bytes | None:
    """Put an APP1 Exif segment with the UserComment after SOI and any APP0, replacing an old Exif one."""
    parsed = _jpeg_segments(data)
    if parsed is None:
        return None
    segments, scan = parsed
    old_exif = [segment for segment in segments if _is_exif_segment(segment)]
    orientation = _exif_orientation(old_exif[0][10:]) if old_exif else None
    # A JPEG segment holds at most 65535 bytes including its length field, so a prompt too long for that
    # (over ~32 000 UTF-16 units) is shortened, keeping the settings line; PNG and WebP have no such cap.
    overhead = 2 + len(EXIF_HEADER) + len(_exif_tiff("", orientation))
    tiff = _exif_tiff(_shorten_utf16(text, JPEG_MAX_SEGMENT - overhead), orientation)
    app1 = bytes((0xFF, JPEG_APP1)) + struct.pack(">H", 2 + len(EXIF_HEADER) + len(tiff)) + EXIF_HEADER + tiff
    kept = [segment for segment in segments if not _is_exif_segment(segment)]
    # JFIF requires its APP0 first; Exif readers look right after it.
    leading = 0
    while leading < len(kept) and kept[leading][1] == JPEG_APP0:
        leading += 1
    return b"".join([JPEG_SOI, *kept[:leading], app1, *kept[leading:], scan])


# --- WebP ---------------------------------------------------------------------------------------


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """Split a WebP RIFF container into (fourcc, payload) pairs."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = 8 + struct.unpack("<I", data[4:8])[0]
    if end > len(data):
        return None
    chunks, pos = [], 12
    while pos + 8 <= end:
        fourcc, size = struct.unpack("<4sI", data[pos:pos + 8])
        if pos + 8 + size > end:
            return None
        chunks.append((fourcc, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + size % 2  # payloads are padded to an even length
    return chunks or None


def _riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """Serialize chunks back into a WebP RIFF container with a correct size."""
    body = b"".join(fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
                    for fourcc, payload in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _bitstream_canvas(fourcc: bytes, payload: bytes) -> tuple[int, int, bool] | None:
    """Read width, height and whether alpha is used from a VP8 or VP8L bitstream header."""
    if fourcc == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF, False  # the top two bits are upscaling hints
    if fourcc == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    return None


def _vp8x(flags: int, width: int, height: int) -> bytes:
    """Build a VP8X payload: flags, three reserved bytes, then canvas width and height minus one (24-bit)."""
    return bytes((flags, 0, 0, 0)) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


def _embed_webp(data: bytes, text: str) -> bytes | None:
    """Add (or replace) an EXIF chunk, switching a simple-format file to the extended format first."""
    chunks = _riff_chunks(data)
    if chunks is None:
        return None
    exif = (b"EXIF", _exif_tiff(text))  # no "Exif\0\0" prefix inside WebP, per the container spec
    first, payload = chunks[0]
    if first == b"VP8X":
        if len(payload) < 10:
            return None
        head = (b"VP8X", bytes((payload[0] | WEBP_FLAG_EXIF,)) + payload[1:])
        rest = chunks[1:]
    else:
        canvas = _bitstream_canvas(first, payload)
        if canvas is None:
            return None
        width, height, alpha = canvas
        head = (b"VP8X", _vp8x(WEBP_FLAG_EXIF | (WEBP_FLAG_ALPHA if alpha else 0), width, height))
        rest = chunks
    kinds = [fourcc for fourcc, _ in rest]
    if b"EXIF" in kinds:  # replace in place, and drop any duplicates a sloppy writer left
        position = kinds.index(b"EXIF")
        rest = [chunk for chunk in rest if chunk[0] != b"EXIF"]
    else:
        # The container orders metadata as EXIF then XMP, after the image data.
        position = kinds.index(b"XMP ") if b"XMP " in kinds else len(rest)
    rest.insert(position, exif)
    return _riff([head, *rest])
