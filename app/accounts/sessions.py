"""Server-side sessions: one row per sign-in, ended by signing out, an idle timeout or an absolute lifetime."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, g, request, session
from flask_login import login_user
from ua_parser import parse as parse_user_agent

from app.accounts.tokens import hash_secret
from app.extensions import db
from app.models import User, UserSession, utcnow

# Flask-Login's key in the signed cookie. It holds this session's random secret, never the account's id, so the
# cookie is worth nothing once the row is gone.
COOKIE_KEY = "_user_id"
SECRET_BYTES = 32
# last_seen_at is written at most this often (or a quarter of the idle timeout), not on every request.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
MAX_USER_AGENT = 512  # parsed no further: the rules are regular expressions, a huge header must not cost more
MAX_DEVICE = 120


def idle_timeout() -> timedelta:
    """How long a session lasts without a request (SESSION_IDLE_MINUTES)."""
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def lifetime() -> timedelta:
    """How long a session lasts after signing in, however busy (SESSION_LIFETIME_HOURS)."""
    return timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"])


def seen_resolution() -> timedelta:
    """How stale last_seen_at may be: fine enough that the idle timeout holds to within a quarter of itself."""
    return min(LAST_SEEN_RESOLUTION, idle_timeout() / 4)


def device_of(user_agent: str) -> str:
    """What a person recognises their browser by: "Firefox 128 on Ubuntu", else the header itself, shortened."""
    user_agent = user_agent[:MAX_USER_AGENT]
    result = parse_user_agent(user_agent)
    browser, system = result.user_agent, result.os
    if browser is None:
        return user_agent[:MAX_DEVICE] or "Unknown device"
    name = f"{browser.family} {browser.major}" if browser.major else browser.family
    if system is not None:
        name += f" on {system.family}" + (f" {system.major}" if system.major else "")
    return name[:MAX_DEVICE]


def _address() -> str:
    return (request.remote_addr or "unknown")[:45]


def begin(user: User) -> None:
    """Sign this browser in as the user, in a session of its own that nothing else can end or reuse."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    row = UserSession(user_id=user.id, secret_hash=hash_secret(secret), created_at=now, last_seen_at=now,
                      device=device_of(request.user_agent.string), address=_address())
    db.session.add(row)
    db.session.flush()
    g.user_session_id = row.id
    _sweep(now)
    db.session.commit()
    login_user(user)
    session[COOKIE_KEY] = secret


def _sweep(now: datetime) -> None:
    """Delete every session past its idle timeout or lifetime (whoever's), so ended ones do not pile up."""
    db.session.execute(sa.delete(UserSession).where(_ended(now)).execution_options(synchronize_session=False))


def _ended(now: datetime) -> sa.ColumnElement[bool]:
    return (UserSession.last_seen_at <= now - idle_timeout()) | (UserSession.created_at <= now - lifetime())


def resolve(secret: object) -> User | None:
    """Flask-Login's loader: the enabled user of the live session with this secret; an ended session is deleted."""
    if not isinstance(secret, str) or len(secret) > 100:
        return None
    row = db.session.scalar(sa.select(UserSession).options(so.joinedload(UserSession.user))
                            .where(UserSession.secret_hash == hash_secret(secret)))
    if row is None:
        return None
    now = utcnow()
    if row.user.disabled or now - row.last_seen_at >= idle_timeout() or now - row.created_at >= lifetime():
        _delete(sa.delete(UserSession).where(UserSession.id == row.id))
        return None
    # The id, not the row: after the commit below the row would be read again, and it may be gone by then.
    user, g.user_session_id = row.user, row.id
    if now - row.last_seen_at >= seen_resolution():
        _note_use(row.id, now)
    return user


def _note_use(session_id: int, now: datetime) -> None:
    """Record this request's time and address, unless another request of the session just did."""
    db.session.execute(sa.update(UserSession).where(
        UserSession.id == session_id, UserSession.last_seen_at < now - seen_resolution(),
    ).values(last_seen_at=now, address=_address()).execution_options(synchronize_session=False))
    db.session.commit()


def recently_seen(secret: object) -> sa.ColumnElement[bool] | None:
    """A condition on UserSession for a query that checks the session without loading it (the generate poll).

    It holds only while the session is live and was seen within seen_resolution(), so whoever relies on it never
    needs to note the use: a session seen longer ago fails it, and the caller takes the loader's path instead.
    """
    if not isinstance(secret, str) or len(secret) > 100:
        return None
    now = utcnow()
    return sa.and_(UserSession.secret_hash == hash_secret(secret), UserSession.created_at > now - lifetime(),
                   UserSession.last_seen_at > now - seen_resolution())


def current_id() -> int | None:
    """The id of the session this request was signed in with, if any (not an API token's request)."""
    return g.get("user_session_id")


def of_user(user: User) -> list[UserSession]:
    """The user's live sessions, the most recently seen first."""
    return list(db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user.id, ~_ended(utcnow()))
                                   .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())))


def end_current() -> None:
    """Delete this request's session: its cookie, and every copy of it, stops working now."""
    session_id = g.pop("user_session_id", None)
    if session_id is not None:
        _delete(sa.delete(UserSession).where(UserSession.id == session_id))


def end(user: User, session_id: int) -> bool:
    """End one of the user's sessions; False if the user has no such session (someone else's is not theirs)."""
    return _delete(sa.delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id)) > 0


def end_others(user: User, keep_id: int) -> int:
    """End every session of the user but the one with this id; how many ended."""
    return _delete(sa.delete(UserSession).where(UserSession.user_id == user.id, UserSession.id != keep_id))


def end_all(user: User) -> int:
    """End every session of the user (a password set, a disabled account); how many ended."""
    return _delete(sa.delete(UserSession).where(UserSession.user_id == user.id))


def _delete(statement: sa.Delete) -> int:
    count = db.session.execute(statement.execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return count
