"""The sign-in device cookie: a signed note, kept by a browser, of the accounts that have signed in on it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from app.models import MAX_ID

COOKIE_NAME = "sign_in_device"
COOKIE_PATH = "/login"  # only the sign-in form reads it
MAX_AGE_SECONDS = 365 * 24 * 3600  # renewed by every sign-in
MAX_ACCOUNTS = 10  # a shared browser remembers the last ten accounts signed in on it
SALT = "sign-in-device"  # a signature made for this cookie is valid for nothing else (sessions, CSRF, links)


@dataclass(frozen=True)
class Device:
    """A browser that has signed in before: its random id and the ids of the accounts signed in on it."""

    id: str
    accounts: tuple[int, ...]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def _parsed(data: object) -> Device | None:
    """The Device a verified payload describes, or None when its shape is not one this module wrote."""
    if not isinstance(data, dict) or not isinstance(data.get("d"), str) or not isinstance(data.get("a"), list):
        return None
    accounts = data["a"]
    if not all(type(a) is int and 0 < a <= MAX_ID for a in accounts) or len(accounts) > MAX_ACCOUNTS:
        return None
    return Device(data["d"], tuple(accounts))


def this_device() -> Device | None:
    """The device this request's cookie names, if its signature holds and it was issued within MAX_AGE_SECONDS."""
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        return _parsed(_serializer().loads(raw, max_age=MAX_AGE_SECONDS))
    except BadData:
        return None


def remember(response: Response, user_id: int) -> None:
    """After a sign-in: mark this browser as a known device of the account (a new device id the first time)."""
    device = this_device()
    device_id = device.id if device else secrets.token_urlsafe(16)
    others = [a for a in (device.accounts if device else ()) if a != user_id]
    accounts = [*others[-(MAX_ACCOUNTS - 1):], user_id]
    response.set_cookie(COOKIE_NAME, _serializer().dumps({"d": device_id, "a": accounts}), max_age=MAX_AGE_SECONDS,
                        path=COOKIE_PATH, httponly=True, samesite="Lax",
                        secure=bool(current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure))
