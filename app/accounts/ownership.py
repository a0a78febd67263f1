"""Who may see what: members their own batches and images, admins everything; anything else is a 404."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, session
from flask_login import current_user

from app.extensions import db, login_manager
from app.models import MAX_ID, Generation, User


def visible(owner_column: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool]:
    """The condition a query of rows with this owner column needs for the signed-in user (AUTH_MODE=none: all)."""
    if current_app.config["AUTH_MODE"] != "accounts" or (current_user.is_authenticated and current_user.is_admin):
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


def _session_user() -> tuple[int, int] | None:
    """The (user id, session version) Flask-Login keeps in the session cookie, if well formed."""
    raw = session.get("_user_id")
    user_id, _, version = raw.partition(":") if isinstance(raw, str) else ("", "", "")
    if not (user_id.isdecimal() and version.isdecimal() and len(version) < 10 and int(user_id) <= MAX_ID):
        return None
    return int(user_id), int(version)


def session_visible(owner_column: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool] | None:
    """visible() with the session's account checked inside the same query, so a poll loads no User row.

    The condition holds only for a live session (id and version match, account enabled) of the owner or an
    admin, as Flask-Login's loader would decide. None when only loading the user can tell (no account in the
    cookie, strong session protection): the caller then takes the ordinary path.
    """
    if current_app.config["AUTH_MODE"] != "accounts":
        return sa.true() if "_user_id" not in session else None  # the one local user sees everything
    signed_in = _session_user()
    if signed_in is None or login_manager.session_protection == "strong":
        return None
    user_id, version = signed_in
    return sa.exists().where(User.id == user_id, User.session_version == version, User.disabled.is_(False),
                             User.is_admin | (owner_column == User.id))
