"""Deleting an image: its row, its file and thumbnail, and its batch once nothing is left in it."""

from __future__ import annotations

from app.extensions import db
from app.media_store import orphans
from app.models import Generation
from app.services import services


def delete_image(generation: Generation) -> None:
    """Remove the row (and an emptied batch) in one commit, then the files (already gone is fine)."""
    files, storage = (generation.file_name, generation.thumb_name), generation.storage
    batch = generation.batch
    db.session.delete(generation)
    db.session.flush()
    if not batch.generations:
        db.session.delete(batch)  # an empty batch would be a generate page with nothing on it
    db.session.commit()
    # Already gone is fine; a store that is down now deletes them later.
    orphans.discard(services().stores, services().redis, storage, files)
