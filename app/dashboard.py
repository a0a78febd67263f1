"""rq-dashboard at /rq, only with credentials, behind basic auth and a same-origin check."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, request

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
    """Ask for credentials; refuse state changes that come from another site."""
    if not _credentials_ok():
        return Response("Authentication required", 401, {"WWW-Authenticate": 'Basic realm="rq dashboard"'})
    if request.method not in SAFE_METHODS and not _same_origin():
        abort(403)
    return None


def register_dashboard(app: Flask) -> None:
    """Mount rq-dashboard when RQ_DASHBOARD_USERNAME, RQ_DASHBOARD_PASSWORD and REDIS_URL are set."""
    config = app.config
    if not (config.get("RQ_DASHBOARD_USERNAME") and config.get("RQ_DASHBOARD_PASSWORD") and config.get("REDIS_URL")):
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
