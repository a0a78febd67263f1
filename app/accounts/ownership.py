"""Who may see what: members their own batches and images, admins everything; anything else is a 404."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, session
from flask_login import current_user

from app.accounts import sessions
from app.extensions import db, login_manager
from app.models import Generation, User, UserSession


def visible(owner_column: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool]:
    """The condition a query of rows with this owner column needs for the signed-in user (AUTH_MODE=none: all)."""
    if current_app.config["AUTH_MODE"] != "accounts" or (current_user.is_authenticated and current_user.is_admin):
        return sa.true()
    if not current_user.is_authenticated:
        return sa.false()
    return owner_column == current_user.id


def sees_install_account() -> bool:
    """Whether the signed-in user may see what belongs to the install (the Stability balance): admins, and the one
    user of an install without accounts, who is its operator."""
    if current_app.config["AUTH_MODE"] != "accounts":
        return True
    return bool(current_user.is_authenticated and current_user.is_admin)


def generation_or_404(generation_id: int) -> Generation:
    """A generation the signed-in user may see; someone else's answers exactly as a missing one does."""
    generation = db.session.scalar(sa.select(Generation).where(Generation.id == generation_id,
                                                               visible(Generation.owner_id)))
    if generation is None:
        abort(404)
    return generation


def session_visible(owner_column: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool] | None:
    """visible() with the session checked inside the same query, so a poll loads no session or User row.

    The condition holds only for a live session seen within the last minute (sessions.recently_seen) of an
    enabled owner or admin, which Flask-Login's loader would accept without writing anything. None when only
    the loader can tell (no session in the cookie, strong session protection): the caller takes that path.
    """
    if current_app.config["AUTH_MODE"] != "accounts":
        return sa.true() if sessions.COOKIE_KEY not in session else None  # the one local user sees everything
    live = sessions.recently_seen(session.get(sessions.COOKIE_KEY))
    if live is None or login_manager.session_protection == "strong":
        return None
    return sa.exists().where(live, User.id == UserSession.user_id, User.disabled.is_(False),
                             User.is_admin | (owner_column == User.id))
