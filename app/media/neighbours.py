"""An image's neighbours in gallery order (newest first), for the detail page's previous and next links."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.models import Generation


@dataclass(frozen=True)
class Neighbours:
    """The ids just before (newer) and just after (older) an image in the gallery, if any."""

    previous: int | None
    next: int | None


def neighbour_statement(generation: Generation, visible: sa.ColumnElement[bool], newer: bool) -> sa.Select:
    """One indexed row: the closest image on (created_at, id) in one direction, among those `visible` allows."""
    key = sa.tuple_(Generation.created_at, Generation.id)
    here = (generation.created_at, generation.id)
    # The same scoping as the gallery's own query, so the links walk exactly the images it lists.
    query = sa.select(Generation.id).where(Generation.file_name.is_not(None), visible)
    if newer:
        query = query.where(key > here).order_by(Generation.created_at.asc(), Generation.id.asc())
    else:
        query = query.where(key < here).order_by(Generation.created_at.desc(), Generation.id.desc())
    return query.limit(1)


def gallery_neighbours(generation: Generation, visible: sa.ColumnElement[bool]) -> Neighbours:
    """The previous (newer) and next (older) image of the gallery around this one."""
    return Neighbours(previous=db.session.scalar(neighbour_statement(generation, visible, newer=True)),
                      next=db.session.scalar(neighbour_statement(generation, visible, newer=False)))
