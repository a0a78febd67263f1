"""Facts about image files: sizes per aspect ratio, and checking bytes really are an image."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from app.providers.base import GenerationError

# Pixel sizes the API documents for Ultra and SD 3.5 (1 MP); Core answers at 1.5 MP.
SIZES_1MP = {
    "1:1": (1024, 1024), "5:4": (1088, 896), "3:2": (1216, 832), "16:9": (1344, 768),
    "21:9": (1536, 640), "4:5": (896, 1088), "2:3": (832, 1216), "9:16": (768, 1344),
    "9:21": (640, 1536),
}
MIME_BY_PIL_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSION_BY_MIME = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
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
    """An image's facts and its decoded pixels, read once for both the checks and the thumbnail."""

    info: ImageInfo
    image: Image.Image


def decode_image(data: bytes) -> DecodedImage:
    """Decode image bytes fully, or raise GenerationError if they are not a whole PNG/JPEG/WebP."""
    try:
        image = Image.open(io.BytesIO(data))
        fmt, (width, height) = image.format, image.size
        mime_type = MIME_BY_PIL_FORMAT.get(fmt or "")
        if mime_type is None:
            raise GenerationError(NOT_AN_IMAGE)
        if width * height > MAX_PIXELS:
            raise GenerationError("The API answered with an implausibly large image")
        # A full decode, not verify(): verify passes a truncated file that then fails at the thumbnail.
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise GenerationError(NOT_AN_IMAGE) from None
    return DecodedImage(ImageInfo(width=width, height=height, mime_type=mime_type), image)


def inspect_image(data: bytes) -> ImageInfo:
    """Return size and type of image bytes, or raise GenerationError if they are not a PNG/JPEG/WebP."""
    return decode_image(data).info


def ratio_class(aspect_ratio: str) -> str:
    """CSS class that reserves an image's box before it loads (no inline styles under our CSP)."""
    return "ratio-" + aspect_ratio.replace(":", "-") if aspect_ratio in SIZES_1MP else "ratio-1-1"
