"""A source image made ready to send to an endpoint: shrunk to the size it takes, and re-encoded when the request
body would pass the API's 10 MiB."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from app.imaging.decoding import MAX_PIXELS
from app.imaging.errors import ImageError

# JPEG qualities tried in turn for an opaque source too large to send as it is (WebP for a transparent one).
QUALITIES = (92, 85, 75)
PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def ready_to_send(data: bytes, mime_type: str, size: tuple[int, int] | None, max_bytes: int) -> tuple[bytes, str]:
    """The file as sent: unchanged when it fits, else resized to `size` (None: its own) and/or re-encoded (JPEG, or
    WebP where it has transparency) until it is at most `max_bytes`. ImageError if it cannot be made to fit."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError("The source image is too large to send")
            resize = size is not None and size != image.size
            if not resize and len(data) <= max_bytes:
                return data, mime_type
            if resize and image.format == "JPEG":
                image.draft("RGB", size)  # decode at the smallest scale that still covers the target
            pixels = image.convert("RGBA" if image.has_transparency_data else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ImageError("The source image could not be read") from None
    if resize:
        pixels = pixels.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded = _encoded(pixels, PIL_FORMATS.get(mime_type, "PNG"), None)
        if len(encoded) <= max_bytes:
            return encoded, mime_type if mime_type in PIL_FORMATS else "image/png"
    lossy, lossy_mime = ("WEBP", "image/webp") if pixels.mode == "RGBA" else ("JPEG", "image/jpeg")
    for quality in QUALITIES:
        encoded = _encoded(pixels, lossy, quality)
        if len(encoded) <= max_bytes:
            return encoded, lossy_mime
    raise ImageError("The source image is too large to send, even re-encoded")


def _encoded(image: Image.Image, fmt: str, quality: int | None) -> bytes:
    """The image encoded in this format (lossless PNG/WebP when quality is None)."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=quality or 95)
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", **({"quality": quality} if quality else {"lossless": True}))
    else:
        image.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()
