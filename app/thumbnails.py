"""Small WebP thumbnails for the gallery, so a page of 24 weighs kilobytes, not megabytes."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

THUMBNAIL_LONG_SIDE = 384
THUMBNAIL_QUALITY = 78


@dataclass(frozen=True)
class Thumbnail:
    """Encoded thumbnail bytes and their pixel size."""

    data: bytes
    width: int
    height: int


def make_thumbnail(data: bytes) -> Thumbnail:
    """Scale an image (already checked by inspect_image) to at most 384 px on its long side, as WebP."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGB")
        # reducing_gap: shrink by whole factors first (cheap), then LANCZOS only the last step.
        image.thumbnail((THUMBNAIL_LONG_SIDE, THUMBNAIL_LONG_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        buffer = io.BytesIO()
        image.save(buffer, format="WEBP", quality=THUMBNAIL_QUALITY, method=4)
        return Thumbnail(buffer.getvalue(), image.width, image.height)
