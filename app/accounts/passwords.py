"""Password hashing with Argon2 (argon2-cffi): no hand-written crypto."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 10


def _hasher() -> PasswordHasher:
    """The app's hasher; its cost comes from ARGON2_PARAMS (cheap only in the test configuration)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    hasher = app.extensions.get("password_hasher")
    if hasher is None:
        hasher = app.extensions["password_hasher"] = PasswordHasher(**app.config.get("ARGON2_PARAMS", {}))
    return hasher


def hash_password(password: str) -> str:
    """An Argon2id hash of the password, with its own random salt."""
    return _hasher().hash(password)


def _dummy_hash() -> str:
    """A hash to verify against when there is no account, so unknown emails cost the same time as known ones."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    dummy = app.extensions.get("dummy_password_hash")
    if dummy is None:
        dummy = app.extensions["dummy_password_hash"] = _hasher().hash("no account has this password")
    return dummy


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True if the password matches; a missing hash is checked against a dummy so it takes as long."""
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 1024:
        return "Use at most 1,024 characters."
    return None
