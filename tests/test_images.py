"""Decoding what the API sends (every PNG kind through Wuffs, JPEG at a reduced scale) and the thumbnails made of it."""

import io
import struct
import zlib

import pytest
from PIL import Image, ImageDraw

from app.imaging import png_chunks
from app.imaging.decoding import decode_image
from app.imaging.errors import NOT_AN_IMAGE, ImageError
from app.imaging.thumbnails import make_thumbnail


def encoded(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def picture(mode: str = "RGB", size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A picture with distinct pixels, so a decoder that gets anything wrong shows it."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    ImageDraw.Draw(image).ellipse((size[0] // 8, size[1] // 8, size[0] * 7 // 8, size[1] * 7 // 8), fill=(200, 40, 90))
    if mode == "RGBA":
        image.putalpha(Image.linear_gradient("L").resize(size))
    return image if mode in ("RGB", "RGBA") else image.convert(mode)


PNG_KINDS = {
    "rgb": lambda: encoded(picture()),
    "rgba": lambda: encoded(picture("RGBA")),
    "grey": lambda: encoded(picture("L")),
    "palette": lambda: encoded(picture("P")),
    "palette with a transparent colour": lambda: encoded(picture("P"), transparency=0),
    "16-bit grey": lambda: encoded(Image.frombytes("I;16B", (96, 64), bytes(v for v in picture("L").tobytes()
                                                                          for _ in range(2)))),
    "interlaced": lambda: interlaced_png(),
}


def interlaced_png() -> bytes:
    """Pillow cannot write Adam7, so build one: IHDR with interlace 1 and each of the seven passes filtered 0."""
    width, height = 16, 16
    image = picture(size=(width, height))
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        for y in range(y0, height, dy):
            raw += b"\x00" + b"".join(bytes(image.getpixel((x, y))) for x in range(x0, width, dx))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    encode = png_chunks.encode
    return png_chunks.SIGNATURE + encode(b"IHDR", header) + encode(b"IDAT", zlib.compress(raw)) + encode(b"IEND", b"")


@pytest.mark.parametrize("kind", PNG_KINDS)
def test_every_kind_of_png_decodes_to_the_pixels_pillow_sees(kind):
    data = PNG_KINDS[kind]()
    decoded = decode_image(data)
    with Image.open(io.BytesIO(data)) as reference:
        # Pillow clips 16-bit grey when it converts; the picture's 8 bits were written as v * 257.
        expected = picture("L").convert("RGB") if kind == "16-bit grey" else reference.convert(decoded.image.mode)
        assert decoded.info.mime_type == "image/png" and (decoded.info.width, decoded.info.height) == reference.size
    assert decoded.image.mode == ("RGBA" if kind in ("rgba", "palette with a transparent colour") else "RGB")
    assert decoded.image.tobytes() == expected.tobytes()


def flip_byte_in_idat(data: bytes) -> bytes:
    """The same file with one bit of its pixel data flipped, chunk lengths and CRCs left as they were."""
    idat = next(chunk for chunk in png_chunks.chunks(data) if chunk.kind == b"IDAT")
    at = (idat.body_start + idat.end - 4) // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


DAMAGED = {
    "cut in half": lambda data: data[: len(data) // 2],
    "without its IEND": lambda data: data[:-12],
    "cut inside IEND": lambda data: data[:-3],
    "one bit flipped in the pixels": flip_byte_in_idat,
    "a chunk length past the end": lambda data: data[:8] + struct.pack(">I", 10**6) + data[12:],
    "no IHDR first": lambda data: data[:12] + b"IHDX" + data[16:],
    "nothing after the signature": lambda data: data[:8],
}


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_png_is_not_a_valid_image(damage):
    whole = encoded(Image.effect_noise((256, 256), 40).convert("RGB"))
    with pytest.raises(ImageError) as caught:
        decode_image(DAMAGED[damage](whole))
    assert caught.value.reason == NOT_AN_IMAGE


def test_bytes_after_iend_are_left_alone():
    data = encoded(picture()) + b"\x00" * 16
    assert decode_image(data).image.size == (96, 64)


def test_a_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_thumbnail():
    data = encoded(picture(size=(1344, 768)), "JPEG", quality=90)
    decoded = decode_image(data, long_side=384)
    assert (decoded.info.width, decoded.info.height) == (1344, 768)  # the file's facts, not the scaled pixels'
    assert decoded.image.size == (672, 384)  # 1/2: 1/4 would leave the short side under 384
    assert decode_image(data).image.size == (1344, 768)


def test_a_cut_jpeg_fails_at_a_reduced_scale_too():
    data = encoded(Image.effect_noise((1024, 1024), 60).convert("RGB"), "JPEG", quality=95)
    with pytest.raises(ImageError):
        decode_image(data[: len(data) * 3 // 4], long_side=384)


def test_an_opaque_image_gets_a_jpeg_thumbnail_of_at_most_384_pixels():
    thumbnail = make_thumbnail(picture(size=(1344, 768)))
    assert (thumbnail.mime_type, thumbnail.width, thumbnail.height) == ("image/jpeg", 384, 219)
    with Image.open(io.BytesIO(thumbnail.data)) as image:
        assert image.format == "JPEG" and image.size == (384, 219)


def test_a_transparent_image_keeps_its_transparency_in_a_webp_thumbnail():
    thumbnail = make_thumbnail(decode_image(encoded(picture("RGBA", (1024, 1024)))).image)
    assert (thumbnail.mime_type, thumbnail.width, thumbnail.height) == ("image/webp", 384, 384)
    with Image.open(io.BytesIO(thumbnail.data)) as image:
        assert image.format == "WEBP" and image.mode == "RGBA"


def test_an_alpha_channel_with_nothing_see_through_gets_a_jpeg_thumbnail():
    opaque = picture(size=(512, 512))
    opaque.putalpha(255)
    assert make_thumbnail(decode_image(encoded(opaque)).image).mime_type == "image/jpeg"


def test_a_small_image_is_not_enlarged_and_a_grey_one_becomes_rgb():
    thumbnail = make_thumbnail(picture("L", (200, 100)))
    assert (thumbnail.mime_type, thumbnail.width, thumbnail.height) == ("image/jpeg", 200, 100)


def test_the_thumbnail_looks_like_the_image():
    image = picture(size=(1024, 1024))
    thumbnail = make_thumbnail(image)
    with Image.open(io.BytesIO(thumbnail.data)) as small:
        expected = image.resize((384, 384), Image.Resampling.LANCZOS)
        difference = sum(abs(a - b) for a, b in zip(small.convert("RGB").tobytes(), expected.tobytes(), strict=True))
    assert difference / (384 * 384 * 3) < 3  # mean per channel, out of 255: JPEG's loss, nothing more
