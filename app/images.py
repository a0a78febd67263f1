"""Facts about image files: sizes per aspect ratio, and checking bytes really are an image."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from pywuffs import ImageDecoderType, PixelFormat
from pywuffs.aux import ImageDecoder, ImageDecoderConfig

from app import png_chunks
from app.providers.base import GenerationError

# Pixel sizes the API documents for Ultra and SD 3.5 (1 MP); Core answers at 1.5 MP.
SIZES_1MP = {
    "1:1": (1024, 1024), "5:4": (1088, 896), "3:2": (1216, 832), "16:9": (1344, 768),
    "21:9": (1536, 640), "4:5": (896, 1088), "2:3": (832, 1216), "9:16": (768, 1344),
    "9:21": (640, 1536),
}
MIME_BY_PIL_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSION_BY_MIME = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
MIME_BY_EXTENSION = {extension: mime for mime, extension in EXTENSION_BY_MIME.items()}
# Decompression-bomb guard: the largest documented output is 2304 x 960 at 1.5 MP.
MAX_PIXELS = 16_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What Pillow read from an image file."""

    width: int
    height: int
    mime_type: str


NOT_AN_IMAGE = "The API answered with something that is not a valid image"


@dataclass(frozen=True)
class DecodedImage:
    """An image's facts and its decoded pixels, read once for both the checks and the thumbnail.

    `image` may be smaller than `info` says: a JPEG is decoded at the scale the caller asked for.
    """

    info: ImageInfo
    image: Image.Image


def decode_image(data: bytes, long_side: int | None = None) -> DecodedImage:
    """Decode image bytes, or raise GenerationError if they are not a whole PNG/JPEG/WebP.

    `long_side` is the size the caller needs at least: a JPEG is then decoded at the smallest of 1/8, 1/4 or
    1/2 scale that still covers it (libjpeg skips most of the work, yet reads every byte, so a cut file fails).
    """
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        fmt, (width, height) = image.format, image.size
        mime_type = MIME_BY_PIL_FORMAT.get(fmt or "")
        if mime_type is None:
            raise GenerationError(NOT_AN_IMAGE)
        if width * height > MAX_PIXELS:
            raise GenerationError("The API answered with an implausibly large image")
        if fmt == "PNG":
            image = decode_png(data, width, height)
        else:
            if fmt == "JPEG" and long_side:
                image.draft("RGB", (long_side, long_side))
            # A full decode, not verify(): verify passes a truncated file that then fails at the thumbnail.
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise GenerationError(NOT_AN_IMAGE) from None
    return DecodedImage(ImageInfo(width=width, height=height, mime_type=mime_type), image)


def decode_png(data: bytes, width: int, height: int) -> Image.Image:
    """Check every chunk's CRC, then decode with Wuffs: half of Pillow's CPU, and it lets go of the GIL meanwhile.

    Raises ValueError (MalformedPNG) for a damaged file.
    """
    alpha = png_chunks.check_whole(data)
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


def inspect_image(data: bytes) -> ImageInfo:
    """Return size and type of image bytes, or raise GenerationError if they are not a PNG/JPEG/WebP."""
    return decode_image(data).info


def content_type_of(name: str) -> str:
    """The MIME type our file names carry in their extension."""
    return MIME_BY_EXTENSION.get("." + name.rsplit(".", 1)[-1], "application/octet-stream")


def ratio_class(aspect_ratio: str) -> str:
    """CSS class that reserves an image's box before it loads (no inline styles under our CSP)."""
    return "ratio-" + aspect_ratio.replace(":", "-") if aspect_ratio in SIZES_1MP else "ratio-1-1"
