"""Small WebP thumbnails for the gallery, so a page of 24 weighs kilobytes, not megabytes."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from app.images import NOT_AN_IMAGE
from app.providers.base import GenerationError

THUMBNAIL_LONG_SIDE = 384
THUMBNAIL_QUALITY = 78


@dataclass(frozen=True)
class Thumbnail:
    """Encoded thumbnail bytes and their pixel size."""

    data: bytes
    width: int
    height: int


def make_thumbnail(image: Image.Image) -> Thumbnail:
    """Scale a decoded image to at most 384 px on its long side, as WebP (the original is left as it is)."""
    try:
        small = image.convert("RGB") if image.mode not in ("RGB", "RGBA") else image.copy()
        # reducing_gap: shrink by whole factors first (cheap), then LANCZOS only the last step.
        small.thumbnail((THUMBNAIL_LONG_SIDE, THUMBNAIL_LONG_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        buffer = io.BytesIO()
        small.save(buffer, format="WEBP", quality=THUMBNAIL_QUALITY, method=4)
    except (OSError, ValueError) as exc:
        raise GenerationError(NOT_AN_IMAGE) from exc
    return Thumbnail(buffer.getvalue(), small.width, small.height)
