"""Asking for an account's deletion: who may, the password it takes (wrong ones throttled), then the background job."""

from __future__ import annotations

import logging
import math
import time

import sqlalchemy as sa
from flask import current_app
from limits import parse
from limits.errors import StorageError
from redis.exceptions import RedisError

from app.accounts.auth import accounts_mode
from app.accounts.passwords import verify_password
from app.extensions import db, limiter
from app.generations import erasure
from app.models import User
from app.text.wording import count_of

log = logging.getLogger(__name__)
# A stolen session or API token must not become a way to guess the password: wrong ones count, as at sign-in.
PASSWORD_TRIES = parse("5 per 15 minutes")


class DeletionRefused(Exception):
    """The account is not deleted: an HTTP status, a stable code for programs and a message for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def refusal(user: User) -> DeletionRefused | None:
    """Why this account cannot be deleted by anyone now, or None."""
    if not accounts_mode():
        return DeletionRefused(409, "no_accounts", "With AUTH_MODE=none there is one implicit account and nothing "
                                                   "to delete; delete images from the gallery instead.")
    others = sa.exists().where(User.is_admin, User.disabled.is_(False), User.id != user.id)
    if user.is_admin and not user.being_deleted and not db.session.scalar(sa.select(others)):
        return DeletionRefused(409, "last_admin", "This is the only admin account: make someone else an admin "
                                                  "first, or nobody could manage this installation.")
    return None


def delete_own_account(user: User, password: str) -> None:
    """The signed-in user's own request: their password, then the deletion is queued. DeletionRefused otherwise."""
    problem = refusal(user)
    if problem is not None:
        raise problem
    if not _tries_left(user.id):
        raise DeletionRefused(429, "rate_limited", "Too many wrong passwords; try again in "
                                                   f"{count_of(_minutes_to_wait(user.id), 'minute')}.")
    if not verify_password(user.password_hash, password):
        _count_failure(user.id)
        raise DeletionRefused(403, "wrong_password", "That is not your password; nothing was deleted.")
    erasure.request(user)


def admin_refusal(admin: User, user: User) -> DeletionRefused | None:
    """Why this admin cannot delete that account from the users page (their own included), or None."""
    if admin.id == user.id:
        return DeletionRefused(409, "own_account", "Delete your own account from your account page, with your "
                                                   "password.")
    return refusal(user)


def delete_for_admin(admin: User, user: User) -> None:
    """An admin deleting someone else's account from the users page. DeletionRefused when they may not."""
    problem = admin_refusal(admin, user)
    if problem is not None:
        raise problem
    erasure.request(user)


def _identifiers(user_id: int) -> tuple[str, str]:
    return current_app.config["RATELIMIT_KEY_PREFIX"], f"delete-account:{user_id}"


def _tries_left(user_id: int) -> bool:
    """Whether another password may be tried; a limiter that cannot be reached lets it through, as sign-in does."""
    try:
        return limiter.limiter.test(PASSWORD_TRIES, *_identifiers(user_id))
    except (RedisError, StorageError) as exc:
        log.warning("password tries for account deletion not counted: %s", exc)
        return True


def _count_failure(user_id: int) -> None:
    try:
        limiter.limiter.hit(PASSWORD_TRIES, *_identifiers(user_id))
    except (RedisError, StorageError) as exc:
        log.warning("a wrong password for account deletion was not counted: %s", exc)


def _minutes_to_wait(user_id: int) -> int:
    """Whole minutes until the oldest counted failure leaves the window (at least one)."""
    try:
        reset = limiter.limiter.get_window_stats(PASSWORD_TRIES, *_identifiers(user_id)).reset_time
    except (RedisError, StorageError):
        reset = time.time() + PASSWORD_TRIES.get_expiry()
    return max(1, math.ceil((reset - time.time()) / 60))
