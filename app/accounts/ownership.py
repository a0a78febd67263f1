"""Who may see what: members their own batches and images, admins everything; anything else is a 404."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort
from flask_login import current_user

from app.extensions import db
from app.models import Generation


def visible(owner_column: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool]:
    """The condition a query of rows with this owner column needs for the signed-in user."""
    if current_user.is_authenticated and current_user.is_admin:
        return sa.true()
    if not current_user.is_authenticated:
        return sa.false()
    return owner_column == current_user.id


def generation_or_404(generation_id: int) -> Generation:
    """A generation the signed-in user may see; someone else's answers exactly as a missing one does."""
    generation = db.session.scalar(sa.select(Generation).where(Generation.id == generation_id,
                                                               visible(Generation.owner_id)))
    if generation is None:
        abort(404)
    return generation
