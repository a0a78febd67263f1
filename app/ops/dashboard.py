"""rq-dashboard at /rq: admins only (basic auth without accounts), and same-origin POSTs."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, request
from flask_login import current_user

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _credentials_ok() -> bool:
    """Compare basic-auth credentials in constant time."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    user_ok = hmac.compare_digest((auth.username or "").encode(), current_app.config["RQ_DASHBOARD_USERNAME"].encode())
    pass_ok = hmac.compare_digest((auth.password or "").encode(), current_app.config["RQ_DASHBOARD_PASSWORD"].encode())
    return user_ok and pass_ok


def _same_origin() -> bool:
    """True when Origin (or Referer) names this host; the dashboard's POSTs carry no CSRF token."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return False
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def guard_dashboard() -> Response | None:
    """Admins only (or the basic-auth credentials without accounts); refuse state changes from another site."""
    if current_app.config["AUTH_MODE"] == "accounts":
        if not (current_user.is_authenticated and current_user.is_admin):
            abort(404)  # anonymous visitors were sent to sign in already; members learn nothing
    elif not _credentials_ok():
        return Response("Authentication required", 401, {"WWW-Authenticate": 'Basic realm="rq dashboard"'})
    if request.method not in SAFE_METHODS and not _same_origin():
        abort(403)
    return None


def register_dashboard(app: Flask) -> None:
    """Mount rq-dashboard with Redis: in accounts mode for admins; without accounts only with basic-auth credentials."""
    config = app.config
    credentials = config.get("RQ_DASHBOARD_USERNAME") and config.get("RQ_DASHBOARD_PASSWORD")
    if not config.get("REDIS_URL") or not (config["AUTH_MODE"] == "accounts" or credentials):
        return
    import rq_dashboard

    from app.extensions import csrf

    config.setdefault("RQ_DASHBOARD_REDIS_URL", config["REDIS_URL"])
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
    # Its forms have no token; the Origin check in guard_dashboard stands in for CSRF.
    csrf.exempt(rq_dashboard.blueprint)
    # First among the blueprint's hooks, so nothing of the dashboard runs for a stranger.
    app.before_request_funcs.setdefault(rq_dashboard.blueprint.name, []).insert(0, guard_dashboard)
