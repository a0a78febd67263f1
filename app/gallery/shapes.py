"""A tile's shape class, from the image's stored size, so CSS can give it a width in a justified row."""

from __future__ import annotations

import math

from app.models import Generation
from app.providers.options import SIZES_1MP

# Every aspect ratio the models offer, as width / height; stored sizes are rounded to multiples of 64.
RATIOS = {name: width / height for name, (width, height) in SIZES_1MP.items()}


def nearest_ratio(width: int | None, height: int | None, fallback: str = "1:1") -> str:
    """The offered aspect ratio closest to width:height (compared on a log scale, so 2:1 and 1:2 are as far)."""
    if not width or not height:
        return fallback if fallback in RATIOS else "1:1"
    wanted = math.log(width / height)
    return min(RATIOS, key=lambda name: abs(math.log(RATIOS[name]) - wanted))


def tile_shape(generation: Generation) -> str:
    """'shape-16-9': the class static/css/gallery.css sizes a tile by."""
    ratio = nearest_ratio(generation.width, generation.height, generation.aspect_ratio)
    return "shape-" + ratio.replace(":", "-")
