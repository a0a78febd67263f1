"""Share links: a random token that shows one image or one collection signed out, until it expires or is revoked.

Only the token's SHA-256 is stored, as for API tokens: the token is 192 random bits, so a fast hash is enough.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from app.accounts.tokens import hash_secret
from app.extensions import db
from app.models import Collection, Generation, ShareLink, User, utcnow

TOKEN_BYTES = 24  # 192 bits: nothing to guess
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")  # what secrets.token_urlsafe(24) gives, and nothing else
EXPIRY_DAYS = (1, 7, 30, None)  # None: never
EXPIRY_LABELS = {1: "1 day", 7: "7 days", 30: "30 days", None: "Never"}


class ShareLinkError(ValueError):
    """A link that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class NewLink:
    """A link just made: the row, and the token that exists nowhere else once it is shown."""

    link: ShareLink
    token: str


def create_link(owner: User, *, generation: Generation | None = None, collection: Collection | None = None,
                expires_in_days: int | None = 7, show_owner: bool = False) -> NewLink:
    """A live link to the image or the collection (exactly one), expiring after 1, 7 or 30 days or never."""
    if (generation is None) == (collection is None):
        raise ShareLinkError("A link shows one image or one collection.")
    if expires_in_days not in EXPIRY_DAYS:
        raise ShareLinkError("A link expires after 1, 7 or 30 days, or never.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    link = ShareLink(owner_id=owner.id, token_hash=hash_secret(token), show_owner=show_owner, created_at=now,
                     generation_id=generation.id if generation else None,
                     collection_id=collection.id if collection else None,
                     expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None)
    db.session.add(link)
    db.session.commit()
    return NewLink(link, token)


def resolve(token: str) -> ShareLink | None:
    """The live link this token names, or None (malformed, unknown, revoked or expired alike)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    link = db.session.scalar(sa.select(ShareLink).where(ShareLink.token_hash == hash_secret(token)))
    if link is None or not link.is_live(utcnow()):
        return None
    return link


def revoke(link: ShareLink) -> None:
    """End the link now; every URL of it answers 404 from here on."""
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        db.session.commit()


def live_links(where: sa.ColumnElement[bool]) -> list[ShareLink]:
    """The live links `where` allows (an owner's), newest first."""
    now = utcnow()
    return list(db.session.scalars(
        sa.select(ShareLink).where(where, ShareLink.revoked_at.is_(None),
                                   sa.or_(ShareLink.expires_at.is_(None), ShareLink.expires_at > now))
        .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())))


def link_or_none(link_id: int, where: sa.ColumnElement[bool]) -> ShareLink | None:
    """One of the owner's links by id (live or not)."""
    return db.session.scalar(sa.select(ShareLink).where(ShareLink.id == link_id, where))
