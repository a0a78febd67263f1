"""A finished grid as one PNG: each cell's image fitted in a square, the axes' values written beside the rows and
above the columns, and one such grid per Z value, one below the other."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from app.media_store.base import StoreError
from app.media_store.stores import Stores
from app.models import Generation
from app.variations.grids import Grid, tables

log = logging.getLogger(__name__)
CELL = 256  # each image is fitted into a square this many pixels wide
ROW_LABEL_WIDTH = 220  # beside the rows (only with a Y axis)
HEADER_HEIGHT = 40  # above the columns
TITLE_HEIGHT = 40  # above each grid (only with a Z axis)
BACKGROUND, INK, EMPTY = (255, 255, 255), (20, 20, 20), (225, 225, 225)
FONT_SIZE = 18


def grid_size(grid: Grid) -> tuple[int, int]:
    """The PNG's width and height for this grid."""
    left = ROW_LABEL_WIDTH if "y" in grid.axes else 0
    one = (TITLE_HEIGHT if "z" in grid.axes else 0) + HEADER_HEIGHT + grid.size("y") * CELL
    return left + grid.size("x") * CELL, grid.size("z") * one


def _fitted(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    """The text, cut with an ellipsis to fit in `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _image_of(generation: Generation | None, stores: Stores) -> Image.Image | None:
    """The cell's image, fitted into the square; None when it has none or its file cannot be read."""
    if generation is None or not generation.has_image:
        return None
    try:
        # The 384 px thumbnail is enough for a 256 px cell, and decodes in a fraction of the full image's time.
        stored = stores.get(generation.storage).open(generation.thumb_name or generation.file_name or "")
        data = b"".join(stored.chunks())
        image = Image.open(io.BytesIO(data))
        image.thumbnail((CELL - 4, CELL - 4))  # a 2 px margin keeps neighbouring cells apart
        return image.convert("RGB")
    except (StoreError, OSError, ValueError):
        log.warning("grid cell of generation %s could not be read", generation.id)
        return None


def _cell(canvas: Image.Image, draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont, box: tuple[int, int],
          generation: Generation | None, stores: Stores) -> None:
    """Draw one cell at `box` (its top-left corner): the image centred, or its status on grey."""
    left, top = box
    image = _image_of(generation, stores)
    if image is None:
        draw.rectangle((left + 2, top + 2, left + CELL - 3, top + CELL - 3), fill=EMPTY)
        status = generation.status if generation is not None else "missing"
        draw.text((left + CELL // 2, top + CELL // 2), status, fill=INK, font=font, anchor="mm")
        return
    canvas.paste(image, (left + (CELL - image.width) // 2, top + (CELL - image.height) // 2))
    if generation is not None and generation.is_demo:
        draw.text((left + 6, top + CELL - 6), "demo", fill=INK, font=font, anchor="ls", stroke_width=2,
                  stroke_fill=BACKGROUND)


def render_grid(grid: Grid, generations: Sequence[Generation], stores: Stores) -> bytes:
    """The grid as PNG bytes."""
    canvas = Image.new("RGB", grid_size(grid), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=FONT_SIZE)
    left = ROW_LABEL_WIDTH if "y" in grid.axes else 0
    top = 0
    for table in tables(grid, generations, lambda g: g.cell):
        if table.title is not None:
            draw.text((8, top + TITLE_HEIGHT // 2), _fitted(table.title, font, canvas.width - 16), fill=INK,
                      font=font, anchor="lm")
            top += TITLE_HEIGHT
        for i, label in enumerate(table.columns):
            draw.text((left + i * CELL + CELL // 2, top + HEADER_HEIGHT // 2), _fitted(label, font, CELL - 8),
                      fill=INK, font=font, anchor="mm")
        top += HEADER_HEIGHT
        for label, cells in table.rows:
            if label is not None:
                draw.text((8, top + CELL // 2), _fitted(label, font, ROW_LABEL_WIDTH - 16), fill=INK, font=font,
                          anchor="lm")
            for i, generation in enumerate(cells):
                _cell(canvas, draw, font, (left + i * CELL, top), generation, stores)
            top += CELL
    out = io.BytesIO()
    canvas.save(out, format="PNG", optimize=False)
    return out.getvalue()
