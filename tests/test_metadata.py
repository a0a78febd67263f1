"""Generation metadata embedded in PNG, JPEG and WebP files, checked by reading the files back with Pillow."""

from __future__ import annotations

import io
import json
import re
import struct

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from app.imaging.metadata import (
    ImageParameters,
    _jpeg_segments,
    _riff_chunks,
    _shorten_utf16,
    embed_parameters,
    parameters_text,
    read_parameters,
)
from app.providers.options import GenerationOptions

PROMPT = "a café at dusk, (bokeh:1.2)\nsecond line ✓"
NEGATIVE = "blurry, låg kvalitet"
TEXT = parameters_text(ImageParameters(
    prompt=PROMPT, seed=123, width=64, height=48, options=GenerationOptions(
        negative_prompt=NEGATIVE, model="sd3.5-large", style_preset="anime", aspect_ratio="4:3", cfg_scale=4.0),
))
EXIF_IFD, USER_COMMENT, ORIENTATION = 0x8769, 0x9286, 0x0112


def picture(mode: str = "RGB") -> Image.Image:
    """A 64x48 image with enough structure that lossy encoders really have something to lose."""
    image = Image.new(mode, (64, 48))
    image.putdata([((x * 4) % 256, (y * 5) % 256, (x * y) % 256, 255 - x)[:len(mode)]
                   for y in range(48) for x in range(64)])
    return image


def encode(fmt: str, mode: str = "RGB", **options) -> bytes:
    buffer = io.BytesIO()
    picture(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


def decoded(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def user_comment(data: bytes) -> str:
    """What any EXIF reader finds: UserComment in the Exif IFD, decoded from its 8-byte charset prefix."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        raw = exif.get_ifd(EXIF_IFD)[USER_COMMENT]
    assert raw[:8] == b"UNICODE\x00"
    assert exif.endian == ">"  # big-endian header, so the UTF-16 must be big-endian too
    return raw[8:].decode("utf-16-be")


def png_text(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return image.text["parameters"]


def png_chunk_types(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        kinds.append(kind)
        pos += 12 + length
    return kinds


def sRGB_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def with_exif(fmt: str, **tags) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = tags.get("orientation", 1)
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"ASCII\x00\x00\x00old comment"
    return encode(fmt, exif=exif)


# (label, mime type, original bytes, how to read the text back like other tools do)
CASES = [
    ("png", "image/png", lambda: encode("PNG"), png_text),
    ("png-rgba", "image/png", lambda: encode("PNG", "RGBA"), png_text),
    ("jpeg", "image/jpeg", lambda: encode("JPEG", quality=80), user_comment),
    ("jpeg-exif", "image/jpeg", lambda: with_exif("JPEG"), user_comment),
    ("webp-lossy", "image/webp", lambda: encode("WEBP", quality=70), user_comment),
    ("webp-lossless", "image/webp", lambda: encode("WEBP", lossless=True), user_comment),
    ("webp-lossless-alpha", "image/webp", lambda: encode("WEBP", "RGBA", lossless=True), user_comment),
    ("webp-icc-xmp", "image/webp", lambda: encode("WEBP", icc_profile=sRGB_profile(), xmp=b"<x:xmpmeta/>"),
     user_comment),
    ("webp-exif", "image/webp", lambda: with_exif("WEBP"), user_comment),
]


@pytest.mark.parametrize(("mime_type", "make", "read_back"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_embedded_text_is_read_back_and_pixels_are_untouched(mime_type, make, read_back):
    original = make()
    embedded = embed_parameters(original, mime_type, TEXT)

    assert embedded != original
    mode, size, pixels = decoded(embedded)
    assert size == (64, 48)
    # Nothing was re-encoded, so even lossy formats decode to exactly the same pixels.
    assert (mode, size, pixels) == decoded(original)
    assert read_back(embedded) == TEXT
    assert read_parameters(embedded) == TEXT


@pytest.mark.parametrize(("mime_type", "make"), [case[1:3] for case in CASES], ids=[case[0] for case in CASES])
def test_embedding_twice_replaces_rather_than_duplicates(mime_type, make):
    once = embed_parameters(make(), mime_type, TEXT)
    assert embed_parameters(once, mime_type, TEXT) == once

    again = embed_parameters(once, mime_type, "other text")
    assert read_parameters(again) == "other text"
    assert again.count("other text".encode("utf-8" if mime_type == "image/png" else "utf-16-be")) == 1
    assert TEXT.encode("utf-8") not in again and TEXT.encode("utf-16-be") not in again


def test_png_chunk_goes_right_after_ihdr_and_replaces_an_existing_text_chunk():
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "old settings")
    info.add_text("Comment", "kept")
    original = encode("PNG", pnginfo=info)

    embedded = embed_parameters(original, "image/png", TEXT)

    kinds = png_chunk_types(embedded)
    assert kinds[:2] == [b"IHDR", b"iTXt"]
    assert kinds.index(b"iTXt") < kinds.index(b"IDAT")
    with Image.open(io.BytesIO(embedded)) as image:
        assert image.text == {"parameters": TEXT, "Comment": "kept"}


def test_jpeg_exif_follows_jfif_and_keeps_orientation():
    original = with_exif("JPEG", orientation=6)

    embedded = embed_parameters(original, "image/jpeg", TEXT)

    segments, _ = _jpeg_segments(embedded)
    assert segments[0][:2] == b"\xff\xe0" and segments[0][4:9] == b"JFIF\x00"
    assert segments[1][:2] == b"\xff\xe1" and segments[1][4:10] == b"Exif\x00\x00"
    assert sum(segment[4:10] == b"Exif\x00\x00" for segment in segments) == 1
    with Image.open(io.BytesIO(embedded)) as image:
        assert image.getexif()[ORIENTATION] == 6
    assert user_comment(embedded) == TEXT


def test_simple_webp_becomes_extended_with_canvas_and_flags():
    for options, mode, alpha_flag in [({"quality": 70}, "RGB", 0), ({"lossless": True}, "RGBA", 0x10)]:
        original = encode("WEBP", mode, **options)
        assert _riff_chunks(original)[0][0] in (b"VP8 ", b"VP8L")

        embedded = embed_parameters(original, "image/webp", TEXT)

        chunks = _riff_chunks(embedded)
        assert [fourcc for fourcc, _ in chunks] == [b"VP8X", _riff_chunks(original)[0][0], b"EXIF"]
        vp8x = chunks[0][1]
        assert vp8x[0] == 0x08 | alpha_flag
        assert int.from_bytes(vp8x[4:7], "little") + 1 == 64
        assert int.from_bytes(vp8x[7:10], "little") + 1 == 48
        assert chunks[2][1][:4] == b"MM\x00\x2a"  # TIFF straight away, no "Exif\0\0" inside WebP
        assert struct.unpack("<I", embedded[4:8])[0] == len(embedded) - 8


def test_extended_webp_keeps_its_chunks_and_puts_exif_before_xmp():
    original = encode("WEBP", icc_profile=sRGB_profile(), xmp=b"<x:xmpmeta/>")

    embedded = embed_parameters(original, "image/webp", TEXT)

    kinds = [fourcc for fourcc, _ in _riff_chunks(embedded)]
    assert kinds == [b"VP8X", b"ICCP", b"VP8 ", b"EXIF", b"XMP "]
    assert _riff_chunks(embedded)[0][1][0] == _riff_chunks(original)[0][1][0] | 0x08
    with Image.open(io.BytesIO(embedded)) as image:
        assert image.info["icc_profile"] == sRGB_profile()
        assert image.info["xmp"] == b"<x:xmpmeta/>"


@pytest.mark.parametrize("unit", ["x", "é", "🎨"])
def test_a_huge_prompt_is_shortened_to_fit_one_jpeg_segment(unit):
    prompt = unit * (70_000 // len(unit.encode()))
    text = parameters_text(ImageParameters(prompt=prompt, seed=7, width=64, height=48,
                                           options=GenerationOptions(negative_prompt="ugly")))
    original = encode("JPEG")

    embedded = embed_parameters(original, "image/jpeg", text)

    segments, _ = _jpeg_segments(embedded)
    exif_segment = next(segment for segment in segments if segment[4:10] == b"Exif\x00\x00")
    assert struct.unpack(">H", exif_segment[2:4])[0] == len(exif_segment) - 2 > 65_000  # full, not over
    assert decoded(embedded) == decoded(original)
    stored = user_comment(embedded)  # strict UTF-16 decoding: no surrogate was split
    settings = text.rsplit("\n", 1)[1]
    assert stored.startswith(unit * 1000)
    assert stored.endswith("…\n" + settings)
    assert 65_000 < len(stored.encode("utf-16-be")) < len(text.encode("utf-16-be"))


@pytest.mark.parametrize("max_bytes", [20, 22])
def test_shortening_never_splits_a_surrogate_pair(max_bytes):
    shortened = _shorten_utf16("🎨" * 50, max_bytes)
    assert shortened.endswith("🎨…")
    assert len(shortened.encode("utf-16-be", errors="strict")) <= max_bytes


@pytest.mark.parametrize("mime_type", ["image/png", "image/jpeg", "image/webp", "image/gif", "text/plain"])
def test_bytes_that_do_not_parse_come_back_unchanged(mime_type):
    for data in [b"", b"garbage bytes", encode("PNG")[:60], encode("JPEG")[:300], encode("WEBP")[:40]]:
        assert embed_parameters(data, mime_type, TEXT) is data


def test_unknown_or_mismatched_types_come_back_unchanged():
    gif = encode("GIF")
    assert embed_parameters(gif, "image/gif", TEXT) is gif
    png = encode("PNG")
    assert embed_parameters(png, "image/jpeg", TEXT) is png
    assert embed_parameters(png, "image/webp", TEXT) is png


def test_mime_type_parameters_and_case_are_tolerated():
    embedded = embed_parameters(encode("PNG"), "Image/PNG; charset=binary", TEXT)
    assert png_text(embedded) == TEXT


def test_read_parameters_is_none_without_metadata_or_for_garbage():
    assert read_parameters(encode("PNG")) is None
    assert read_parameters(encode("JPEG")) is None
    assert read_parameters(b"garbage") is None


def test_parameters_text_layout():
    assert TEXT == (
        "a café at dusk, (bokeh:1.2)\nsecond line ✓\n"
        "Negative prompt: blurry, låg kvalitet\n"
        'Seed: 123, Size: 64x48, Model: sd3.5-large, Aspect ratio: "4:3", Style: anime, CFG scale: 4, '
        "Software: Image Generator"
    )


def test_parameters_text_omits_missing_values():
    text = parameters_text(ImageParameters(prompt="a cat", seed=None, width=1024, height=1024,
                                           options=GenerationOptions()))
    assert text == "a cat\nSize: 1024x1024, Model: core, Aspect ratio: \"1:1\", Software: Image Generator"
    assert parameters_text(ImageParameters(prompt="a cat", seed=0, width=8, height=8,
                                           options=GenerationOptions(negative_prompt="", cfg_scale=4.5))) == (
        "a cat\nSeed: 0, Size: 8x8, Model: core, Aspect ratio: \"1:1\", CFG scale: 4.5, Software: Image Generator"
    )


def settings_pairs(line: str) -> dict[str, str]:
    """Split a settings line the way A1111-style readers do: quoted values are JSON strings."""
    pairs = re.findall(r'\s*(\w[\w -]*):\s*("(?:\\.|[^"\\])*"|[^,]*)(?:,|$)', line)
    return {key: json.loads(value) if value.startswith('"') else value for key, value in pairs}


def test_values_with_commas_colons_or_quotes_are_quoted_so_pairs_split_correctly():
    awkward = 'neon, "retro": 80s'
    text = parameters_text(ImageParameters(prompt="p", seed=1, width=8, height=8, options=GenerationOptions(
        style_preset=awkward, aspect_ratio="16:9")))
    line = text.split("\n")[-1]
    assert 'Style: "neon, \\"retro\\": 80s"' in line
    assert settings_pairs(line) == {"Seed": "1", "Size": "8x8", "Model": "core", "Style": awkward,
                                    "Aspect ratio": "16:9", "Software": "Image Generator"}
