"""Several images at once: the ids a person ticked, checked as a whole, for bulk delete and the ZIP download."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from flask import abort

from app.accounts import ownership
from app.extensions import db
from app.models import Generation, parse_id
from app.providers.operations import OPERATIONS, Operation

# One request deletes or zips at most this many: a confirm page stays readable, a ZIP a few hundred MB at most,
# and a GET with the ids stays well under URL length limits (a 7-digit id takes 11 characters).
MAX_SELECTED = 100


# What several ticked images can have done to them at once, as one batch: the operations marked `several`.
BULK_OPERATIONS = {name: op for name, op in OPERATIONS.items() if op.several}
BULK_LABELS = {"image-to-image": "Vary", "upscale-fast": "Upscale (fast)", "remove-background": "Remove background"}


class SelectionError(ValueError):
    """The selection cannot be acted on as asked (none, or too many); the message says why."""


def selected_images(raw_ids: Sequence[str]) -> list[Generation]:
    """The images these ids name, newest first; one malformed or not the user's makes the whole request a 404."""
    unique = list(dict.fromkeys(raw_ids))
    if not unique:
        raise SelectionError("Select at least one image first.")
    if len(unique) > MAX_SELECTED:
        raise SelectionError(f"Select at most {MAX_SELECTED} images at a time ({len(unique)} were selected).")
    ids = {parse_id(raw) for raw in unique}
    if None in ids:
        abort(404)  # not an id at all: answered as a path with a bad id is
    images = list(db.session.scalars(
        sa.select(Generation)
        .where(Generation.id.in_(ids), Generation.file_name.is_not(None), ownership.visible(Generation.owner_id))
        .order_by(Generation.created_at.desc(), Generation.id.desc())
    ))
    if len(images) != len(ids):
        abort(404)  # someone else's id answers exactly as a missing one, and nothing of the rest is touched
    return images


def bulk_operation(name: str) -> Operation:
    """The operation the bar's button named; any other is a SelectionError."""
    if name not in BULK_OPERATIONS:
        raise SelectionError("Choose Vary, Upscale (fast) or Remove background for the selected images.")
    return BULK_OPERATIONS[name]


def shared_prompt(images: list[Generation]) -> str:
    """The prompt every selected image has in common (what a variation of all of them starts from), else ""."""
    prompts = {image.prompt for image in images}
    return prompts.pop() if len(prompts) == 1 else ""
