"""Deleting images: their rows, their files and thumbnails, and each batch once nothing is left in it."""

from __future__ import annotations

from collections.abc import Sequence

from app.extensions import db
from app.media_store import orphans
from app.models import Generation
from app.services import services


def delete_image(generation: Generation) -> None:
    """Remove one image: the row (and an emptied batch) in one commit, then the files."""
    delete_images([generation])


def delete_images(generations: Sequence[Generation]) -> None:
    """Remove the rows (and emptied batches) in one commit, then the files (already gone is fine)."""
    files = [(generation.storage, (generation.file_name, generation.thumb_name, generation.mask_name))
             for generation in generations]
    batches = {generation.batch for generation in generations}
    for generation in generations:
        db.session.delete(generation)
    db.session.flush()
    for batch in batches:
        db.session.expire(batch, ["generations"])  # read again: a loaded list would still hold the deleted rows
        if not batch.generations:
            db.session.delete(batch)  # an empty batch would be a generate page with nothing on it
    db.session.commit()
    # Already gone is fine; a store that is down now deletes them later.
    app_services = services()
    for storage, names in files:
        orphans.discard(app_services.stores, app_services.redis, storage, names)
