"""A painted mask (inpaint, erase) as the form or the API sends it: a PNG, white where the image is to change."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from app.imaging.decoding import MAX_PIXELS
from app.imaging.errors import ImageError


@dataclass(frozen=True)
class MaskFacts:
    """What the checks need of a mask."""

    is_png: bool
    width: int
    height: int
    painted: bool  # anything not black on it


def mask_facts(data: bytes, expected_size: tuple[int, int]) -> MaskFacts:
    """Read a mask: its format and size from the header, and, when it is a PNG of `expected_size`, whether
    anything is painted on it (decoded only then). ImageError if it is not a readable image."""
    try:
        with Image.open(io.BytesIO(data)) as mask:
            width, height = mask.size
            if mask.format != "PNG" or (width, height) != expected_size or width * height > MAX_PIXELS:
                return MaskFacts(mask.format == "PNG", width, height, painted=False)
            painted = mask.convert("L").getbbox() is not None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ImageError("The mask is not a readable PNG") from None
    return MaskFacts(True, width, height, painted)
