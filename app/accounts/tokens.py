"""Personal access tokens: made with a random secret shown once, stored as its SHA-256, resolved per request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.models import ApiToken, User, utcnow

SECRET_PREFIX = "igk_"  # lets secret scanners (and people) recognise a leaked token
SECRET_BYTES = 32
SHOWN_CHARACTERS = 8  # of the random part, kept in clear to tell tokens apart on the page
MAX_NAME_LENGTH = 100
MAX_EXPIRY_DAYS = 3650
# last_used_at is written at most this often, so a busy script does not cost a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be made or found; the message says why."""


@dataclass(frozen=True)
class NewToken:
    """A token just made: the row, and the secret that exists nowhere else once this is shown."""

    token: ApiToken
    secret: str


def hash_secret(secret: str) -> str:
    """The stored form of a secret.

    A fast hash is enough: the secret is 32 random bytes, so there is nothing to guess and no slow hash to
    slow guessing down; a password hash here would only cost every API request tens of milliseconds.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def name_problem(name: str) -> str | None:
    """Why a token name cannot be used, or None."""
    if not name:
        return "Give the token a name, such as the script or machine that will use it."
    if len(name) > MAX_NAME_LENGTH:
        return f"Use at most {MAX_NAME_LENGTH} characters."
    if any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF for ch in name):
        return "Use letters, digits, spaces and punctuation only."
    return None


def live_token(user: User, name: str) -> ApiToken | None:
    """The user's unrevoked token with this name (expired ones included), if any."""
    return db.session.scalar(sa.select(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.name == name, ApiToken.revoked_at.is_(None)))


def create_token(user: User, name: str, expires_days: int | None = None) -> NewToken:
    """Make a token for the user; TokenError if the name is unusable or taken by one of their live tokens."""
    name = name.strip()
    problem = name_problem(name)
    if problem:
        raise TokenError(problem)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise TokenError(f"Use a number of days from 1 to {MAX_EXPIRY_DAYS}, or no expiry.")
    if live_token(user, name) is not None:
        raise TokenError(f"You already have a token named {name!r}; revoke it first or choose another name.")
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    token = ApiToken(user_id=user.id, name=name, prefix=secret[:len(SECRET_PREFIX) + SHOWN_CHARACTERS],
                     secret_hash=hash_secret(secret), created_at=now,
                     expires_at=now + timedelta(days=expires_days) if expires_days else None)
    db.session.add(token)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()  # the same name, made a moment ago by another request
        raise TokenError(f"You already have a token named {name!r}; revoke it first or choose another name.") from None
    return NewToken(token, secret)


def user_tokens(user: User) -> list[ApiToken]:
    """The user's tokens, newest first (revoked ones too, so the page shows when they ended)."""
    return list(db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke(token: ApiToken) -> bool:
    """Revoke a token now; False if it was revoked already."""
    changed = db.session.execute(sa.update(ApiToken).where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
                                 .values(revoked_at=utcnow())).rowcount
    db.session.commit()
    return bool(changed)


def revoke_all(user: User) -> int:
    """Revoke every live token of the user now (a password change may ask for it); how many were."""
    changed = db.session.execute(sa.update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                                 .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return changed


def resolve(secret: str) -> ApiToken | None:
    """The live token this secret belongs to, its user enabled; its last use noted (at most once a minute)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.secret_hash == hash_secret(secret)))
    now = utcnow()
    if token is None or not token.is_live(now) or token.user.disabled:
        return None
    _note_use(token, now)
    return token


def _note_use(token: ApiToken, now: datetime) -> None:
    """Record the use, unless one was recorded within the last minute (by this or another process)."""
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    db.session.execute(sa.update(ApiToken).where(
        ApiToken.id == token.id,
        ApiToken.last_used_at.is_(None) | (ApiToken.last_used_at < now - LAST_USED_RESOLUTION),
    ).values(last_used_at=now).execution_options(synchronize_session=False))  # SQLite's naive times: no evaluating
    db.session.commit()
