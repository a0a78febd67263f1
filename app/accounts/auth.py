"""Who is asking: Flask-Login sessions, the implicit local user of AUTH_MODE=none, and the sign-in wall."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.users import local_user
from app.extensions import db, login_manager
from app.models import MAX_ID, User

log = logging.getLogger(__name__)
# Reachable without signing in: the sign-in pages themselves, health checks and static files.
OPEN_ENDPOINTS = {"accounts.login", "accounts.set_password_page", "health.healthz", "health.readyz", "static",
                  "metrics.metrics"}  # /metrics checks its own bearer token


def accounts_mode() -> bool:
    """True when people must sign in (AUTH_MODE=accounts)."""
    return current_app.config["AUTH_MODE"] == "accounts"


def load_user(session_id: str) -> User | None:
    """Flask-Login's loader: the id and session version must both match, and the account must be enabled."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdecimal() or not version.isdecimal() or int(user_id) > MAX_ID:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.disabled or str(user.session_version) != version:
        return None
    return user


def load_local_user(_request: object) -> User | None:
    """In AUTH_MODE=none every request is the one local user."""
    return None if accounts_mode() else local_user()


def wants_json() -> bool:
    """JSON endpoints answer 401 with a body; pages redirect to the sign-in form."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def require_sign_in() -> Response | None:
    """Before every request in accounts mode: anonymous visitors go to /login?next=…, JSON clients get 401."""
    if not accounts_mode() or request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        return None
    if wants_json():
        return jsonify(error={"code": "unauthorized", "message": "Sign in, or send an API token."}), 401
    target = url_for("accounts.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        return Response(status=401, headers={"HX-Redirect": target})  # htmx follows it as a full page load
    return redirect(target)


def safe_next(target: str | None) -> str:
    """A path on this site to go to after signing in; anything else (another host, a scheme) means /."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("prompts.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(ch) < 32 for ch in target):
        return url_for("prompts.index")
    return target


def init_app(app: Flask) -> None:
    """Install the loaders and the wall; warn loudly when a deployment runs without sign-in."""
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.request_loader(load_local_user)
    login_manager.login_view = "accounts.login"
    app.before_request(require_sign_in)
    if app.config["AUTH_MODE"] == "none" and not app.config.get("LOCAL_RUN") and not app.testing:
        log.warning("!!! AUTH_MODE=none outside a local run: ANYONE who can reach this server can spend the "
                    "Stability credits and see, cancel and delete every image. Set AUTH_MODE=accounts. !!!")
