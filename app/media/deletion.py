"""Deleting an image: its row, its file and thumbnail, and its batch once nothing is left in it."""

from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.models import Generation
from app.storage import delete_file


def delete_image(generation: Generation) -> None:
    """Remove the row (and an emptied batch) in one commit, then the files (already gone is fine)."""
    files = (generation.file_name, generation.thumb_name)
    batch = generation.batch
    db.session.delete(generation)
    db.session.flush()
    if not batch.generations:
        db.session.delete(batch)  # an empty batch would be a generate page with nothing on it
    db.session.commit()
    for name in files:
        delete_file(current_app.config["MEDIA_ROOT"], name)
