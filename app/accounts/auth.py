"""Who is asking: server-side sessions through Flask-Login, the local user of AUTH_MODE=none, the sign-in wall."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Request, current_app, g, jsonify, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts import sessions
from app.accounts.tokens import resolve
from app.accounts.users import local_user
from app.extensions import login_manager
from app.models import ApiToken, User

log = logging.getLogger(__name__)
# Reachable without signing in: the sign-in pages themselves, health checks and static files.
OPEN_ENDPOINTS = {"accounts.login", "accounts.set_password_page", "health.healthz", "health.readyz", "static",
                  "api_docs.openapi_json", "api_docs.page",
                  "metrics.metrics",  # /metrics checks its own bearer token
                  # A share link's page and files: the token in the path is the check (app/gallery/shares.py).
                  "shared.page", "shared.file", "shared.thumb", "shared.download",
                  "shared.unknown"}
# Views that check the session inside their own query and apply sign_in_wall themselves when it finds nothing:
# the generate page's poll, which is answered by one query.
SIGN_IN_CHECKED_BY_VIEW = {"batches.status"}
# Where an API token signs a request in: the API itself and the downloads it links to. Nowhere else, so a
# leaked token cannot reach the account pages (to make more tokens, or to change the password).
TOKEN_PATH_PREFIX = "/api/"
TOKEN_ENDPOINTS = {"media.file", "media.thumb", "batches.download_zip", "batches.grid_image", "variations.export"}


def accounts_mode() -> bool:
    """True when people must sign in (AUTH_MODE=accounts)."""
    return current_app.config["AUTH_MODE"] == "accounts"


def bearer_secret() -> str | None:
    """The secret of an `Authorization: Bearer …` header, if the request has one."""
    auth = request.authorization
    return auth.token if auth is not None and auth.type == "bearer" and auth.token else None


def takes_tokens() -> bool:
    """Whether this address accepts an API token (by path under /api/, so an unknown one is a 404, not a 401)."""
    return request.path.startswith(TOKEN_PATH_PREFIX) or request.endpoint in TOKEN_ENDPOINTS


def request_token() -> ApiToken | None:
    """The API token this request was signed in with, if any."""
    return g.get("api_token")


def load_user(secret: str) -> User | None:
    """Flask-Login's loader: the cookie's secret must name a live session (sessions.py) of an enabled account."""
    if takes_tokens() and bearer_secret() is not None:
        return None  # a request that carries a token is the token's, whatever cookie comes along
    return sessions.resolve(secret)


def load_request_user(_request: Request) -> User | None:
    """Without a session: in AUTH_MODE=none the one local user; in accounts mode the user of a valid API token."""
    if not accounts_mode():
        return local_user()
    secret = bearer_secret() if takes_tokens() else None
    token = resolve(secret) if secret else None
    if token is None:
        return None
    g.api_token = token
    return token.user


def wants_json() -> bool:
    """JSON endpoints (and anything sent with a token) answer 401 with a body; pages redirect to sign in."""
    return (request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"
            or bearer_secret() is not None)


def unauthorized_json() -> Response:
    """401 for a program: what is wrong with what it sent, and the scheme it should use."""
    if bearer_secret() is None:
        message = "Sign in, or send an API token: Authorization: Bearer igk_…."
    elif takes_tokens():
        message = "This API token is unknown, expired or revoked."
    else:
        message = "API tokens open the API and image downloads only; sign in for this page."
    response = jsonify(error={"code": "unauthorized", "message": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="image-generator"'
    return response


def require_sign_in() -> Response | None:
    """Before every request in accounts mode (but the views that check it themselves): the sign-in wall."""
    return None if request.endpoint in SIGN_IN_CHECKED_BY_VIEW else sign_in_wall()


def sign_in_wall() -> Response | None:
    """Anonymous visitors go to /login?next=…, JSON clients get 401; None when the request may go on."""
    if not accounts_mode() or request.endpoint in OPEN_ENDPOINTS or current_user.is_authenticated:
        return None
    if wants_json():
        return unauthorized_json()
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
    login_manager.request_loader(load_request_user)
    login_manager.login_view = "accounts.login"
    app.before_request(require_sign_in)
    if app.config["AUTH_MODE"] == "none" and not app.config.get("LOCAL_RUN") and not app.testing:
        log.warning("!!! AUTH_MODE=none outside a local run: ANYONE who can reach this server can spend the "
                    "Stability credits and see, cancel and delete every image. Set AUTH_MODE=accounts. !!!")
