"""Who may see what: members their own batches and images (and the images of collections shared with the team),
admins everything; anything else is a 404."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, session
from flask_login import current_user

from app.accounts import sessions
from app.extensions import db, login_manager
from app.models import (
    SHARED_VISIBILITIES,
    Collection,
    CollectionImage,
    Generation,
    User,
    UserSession,
    Visibility,
)


def visible(owner_column: sa.ColumnElement[int | None]) -> sa.ColumnElement[bool]:
    """The condition a query of rows with this owner column needs for the signed-in user (AUTH_MODE=none: all)."""
    if current_app.config["AUTH_MODE"] != "accounts" or (current_user.is_authenticated and current_user.is_admin):
        return sa.true()
    if not current_user.is_authenticated:
        return sa.false()
    return owner_column == current_user.id


def in_shared_collection(generation_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """True for an image held by a collection shared with the team."""
    return sa.exists().where(CollectionImage.generation_id == generation_id,
                             CollectionImage.collection_id == Collection.id,
                             Collection.visibility.in_(SHARED_VISIBILITIES))


def viewable() -> sa.ColumnElement[bool]:
    """The images the signed-in user may look at and rate: their own, and those of collections shared with the team.

    Only looking: deleting, retrying, reusing and the batch pages keep to visible().
    """
    mine = visible(Generation.owner_id)
    if current_app.config["AUTH_MODE"] != "accounts" or not current_user.is_authenticated:
        return mine
    return sa.or_(mine, in_shared_collection(Generation.id))


def viewable_generation_or_404(generation_id: int) -> Generation:
    """A generation the signed-in user may look at (viewable()); any other answers as a missing one does."""
    generation = db.session.scalar(sa.select(Generation).where(Generation.id == generation_id, viewable()))
    if generation is None:
        abort(404)
    return generation


def owns(owner_id: int | None) -> bool:
    """Whether the signed-in user may manage what this owner id holds: its owner, an admin, or the local user."""
    if current_app.config["AUTH_MODE"] != "accounts":
        return True
    return bool(current_user.is_authenticated and (current_user.is_admin or owner_id == current_user.id))


def collection_visible() -> sa.ColumnElement[bool]:
    """The collections the signed-in user may open: their own, and every one shared with the team."""
    if current_app.config["AUTH_MODE"] == "accounts" and current_user.is_authenticated:
        return sa.or_(visible(Collection.owner_id), Collection.visibility.in_(SHARED_VISIBILITIES))
    return visible(Collection.owner_id)


def collection_or_404(collection_id: int) -> Collection:
    """A collection the signed-in user may open; someone else's private one answers as a missing one does."""
    collection = db.session.scalar(sa.select(Collection).where(Collection.id == collection_id,
                                                               collection_visible()))
    if collection is None:
        abort(404)
    return collection


def may_edit_collection(collection: Collection) -> bool:
    """Whether the signed-in user may add and remove images: its owner (or an admin), and the team if team-edit."""
    return owns(collection.owner_id) or collection.visibility == Visibility.TEAM_EDIT


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
