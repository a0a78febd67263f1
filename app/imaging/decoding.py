"""Checking that bytes really are a whole image, and decoding them once for the checks and the thumbnail."""

from __future__ import annotations

import io
from dataclasses import dataclass

# pywuffs hands back numpy arrays and imports numpy at its first decode, about 0.1 s that each forked worker
# process would pay on its first image; imported here, worker.py's parent pays it once before forking.
import numpy  # noqa: F401
from PIL import Image, UnidentifiedImageError
from pywuffs import ImageDecoderType, PixelFormat
from pywuffs.aux import ImageDecoder, ImageDecoderConfig

from app.imaging import png_chunks
from app.imaging.errors import TOO_LARGE, ImageError

MIME_BY_PIL_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Decompression-bomb guard: the largest documented output is a fast upscale's 4x of 1 MP, 4,096 x 4,096.
MAX_PIXELS = 4_096 * 4_096


@dataclass(frozen=True)
class ImageInfo:
    """What Pillow read from an image file."""

    width: int
    height: int
    mime_type: str


@dataclass(frozen=True)
class DecodedImage:
    """An image's facts and its decoded pixels, read once for both the checks and the thumbnail.

    `image` may be smaller than `info` says: a JPEG is decoded at the scale the caller asked for.
    """

    info: ImageInfo
    image: Image.Image


def decode_image(data: bytes, long_side: int | None = None) -> DecodedImage:
    """Decode image bytes, or raise ImageError if they are not a whole PNG/JPEG/WebP.

    `long_side` is the size the caller needs at least: a JPEG is then decoded at the smallest of 1/8, 1/4 or
    1/2 scale that still covers it (libjpeg skips most of the work, yet reads every byte, so a cut file fails).
    """
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        fmt, (width, height) = image.format, image.size
        mime_type = MIME_BY_PIL_FORMAT.get(fmt or "")
        if mime_type is None:
            raise ImageError
        if width * height > MAX_PIXELS:
            raise ImageError(TOO_LARGE)
        if fmt == "PNG":
            image = decode_png(data, width, height)
        else:
            if fmt == "JPEG" and long_side:
                image.draft("RGB", (long_side, long_side))
            # A full decode, not verify(): verify passes a truncated file that then fails at the thumbnail.
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageError from None
    return DecodedImage(ImageInfo(width=width, height=height, mime_type=mime_type), image)


def pixel_bytes(data: bytes) -> int:
    """About how many bytes the image's pixels take decoded (from its header only; 0 if it has none)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            channels = 4 if image.mode in ("RGBA", "LA", "P") or "transparency" in image.info else 3
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 0
    return min(width * height, MAX_PIXELS) * channels


def decode_png(data: bytes, width: int, height: int) -> Image.Image:
    """Check every chunk's CRC, then decode with Wuffs: half of Pillow's CPU, and it lets go of the GIL meanwhile.

    Raises ValueError (MalformedPNG) for a damaged file.
    """
    alpha = png_chunks.check_chunks_and_read_alpha(data)
    config = ImageDecoderConfig()
    config.enabled_decoders = [ImageDecoderType.PNG]
    # Wuffs writes BGR(A) natively; Pillow swaps it while copying into its own layout, which it does anyway.
    config.pixel_format = PixelFormat.BGRA_NONPREMUL if alpha else PixelFormat.BGR
    result = ImageDecoder(config).decode(data)
    if result.error_message:
        raise ValueError(f"PNG decode: {result.error_message}")
    pixels = result.pixbuf  # a copy: Wuffs' own buffer goes with the result, before Pillow makes a third
    del result
    if pixels.shape[:2] != (height, width):
        raise ValueError("PNG decode: the pixels do not match the header's size")
    mode, raw_mode = ("RGBA", "BGRA") if alpha else ("RGB", "BGR")
    return Image.frombuffer(mode, (width, height), pixels, "raw", raw_mode, 0, 1)
