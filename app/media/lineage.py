"""An image's lineage: the image it was made from, and the images made from it."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Generation
from app.providers.operations import GENERATE, UPLOAD


def made_from_an_image(generation: Generation) -> bool:
    """True when an operation made it from another image (which may since have been deleted)."""
    return generation.operation not in (GENERATE, UPLOAD)


def source_of(generation: Generation, visible: sa.ColumnElement[bool]) -> Generation | None:
    """The image it was made from, if it is still there and the viewer may see it."""
    if generation.source_id is None:
        return None
    return db.session.scalar(sa.select(Generation).where(Generation.id == generation.source_id, visible))


def results_of(generation: Generation, visible: sa.ColumnElement[bool], limit: int = 48) -> list[Generation]:
    """The images made from this one (queued, failed and finished alike), oldest first."""
    return list(db.session.scalars(sa.select(Generation).where(Generation.source_id == generation.id, visible)
                                   .order_by(Generation.id).limit(limit)))
