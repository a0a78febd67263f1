"""rq-dashboard at /rq: admins only (basic auth without accounts), from this site only, state changes by POST."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, jsonify, request
from flask_login import current_user
from redis.exceptions import ResponseError
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError

# The dashboard's views that change Redis. rq-dashboard 0.9 registers requeue_all for GET as well.
STATE_CHANGING = ("delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue")
# What a browser says about where a request comes from: "none" is the address bar or a bookmark.
OWN_SITE = {"same-origin", "none"}
OTHER_SITE = "The dashboard answers only its own pages: open it from this site's address."
JOB_GONE = "That job no longer exists."


def _credentials_ok() -> bool:
    """Compare basic-auth credentials in constant time."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    user_ok = hmac.compare_digest((auth.username or "").encode(), current_app.config["RQ_DASHBOARD_USERNAME"].encode())
    pass_ok = hmac.compare_digest((auth.password or "").encode(), current_app.config["RQ_DASHBOARD_PASSWORD"].encode())
    return user_ok and pass_ok


def _ours(url: str) -> bool:
    """Whether a URL (an Origin or a Referer) is on this site."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def from_another_site() -> bool:
    """Whether Sec-Fetch-Site (or, from a browser without it, Origin or Referer) names another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:  # set by the browser itself; no page can forge it
        return fetch_site not in OWN_SITE
    return any(value is not None and not _ours(value)
               for value in (request.headers.get("Origin"), request.headers.get("Referer")))


def proven_same_origin() -> bool:
    """Whether the browser said this request came from this site (the dashboard's POSTs carry no CSRF token)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    source = request.headers.get("Origin") or request.headers.get("Referer")
    return source is not None and _ours(source)


def guard_dashboard() -> Response | None:
    """Admins only (or the basic-auth credentials without accounts); nothing from another site; changes by POST."""
    if current_app.config["AUTH_MODE"] == "accounts":
        if not (current_user.is_authenticated and current_user.is_admin):
            abort(404)  # anonymous visitors were sent to sign in already; members learn nothing
    elif not _credentials_ok():
        return Response("Authentication required", 401, {"WWW-Authenticate": 'Basic realm="rq dashboard"'})
    if from_another_site():
        abort(403, description=OTHER_SITE)
    if (request.view_args or {}).get("instance_number", 0) >= len(current_app.config["RQ_DASHBOARD_REDIS_URL"]):
        abort(404)  # rq-dashboard itself raises LookupError: a 500
    _state_changes_by_post_from_here()
    return None


def _state_changes_by_post_from_here() -> None:
    """The dashboard's actions take POST only, and only from a page the browser says is this site's."""
    if (request.endpoint or "").removeprefix("rq_dashboard.") not in STATE_CHANGING:
        return
    if request.method != "POST":
        abort(405)
    if not proven_same_origin():
        abort(403, description=OTHER_SITE)


def message(text: str, status: int = 200) -> tuple[Response, int]:
    """A dashboard action's answer, in rq-dashboard's own shape plus a sentence static/js/rq-dashboard.js shows."""
    return jsonify(status="OK" if status < 400 else "ERROR", message=text), status


def answering_rq_errors(view: Callable[..., object]) -> Callable[..., object]:
    """What RQ raises on a job or queue that is gone becomes a message (a page, for a page), not a 500."""
    @functools.wraps(view)
    def wrapped(*args: object, **kwargs: object) -> object:
        try:
            return view(*args, **kwargs)
        except NoSuchJobError:
            if request.method == "GET":
                abort(404, description=JOB_GONE)
            return message(JOB_GONE, 404)
        except (ResponseError, InvalidJobOperation) as exc:
            return message(f"Redis refused this action: {exc}.", 409)
    return wrapped


def compact_queue(queue_name: str) -> tuple[Response, int]:
    """Drop the ids of jobs that no longer exist from a queue; an empty queue has nothing to compact."""
    queue = Queue(queue_name, connection=current_app.redis_conn)  # type: ignore[attr-defined]
    try:
        queue.compact()
    except ResponseError:
        # RQ renames the queue's list first, and Redis has no list for an empty queue.
        if queue.count:
            raise
        return message(f"The queue {queue_name} is empty: there is nothing to compact.")
    return message(f"Compacted {queue_name}: {queue.count} jobs wait in it.")


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
    app.view_functions["rq_dashboard.compact_queue"] = compact_queue
    for endpoint in (*STATE_CHANGING, "job_view"):
        name = f"rq_dashboard.{endpoint}"
        app.view_functions[name] = answering_rq_errors(app.view_functions[name])
    # Its forms have no token; guard_dashboard's same-origin checks stand in for CSRF.
    csrf.exempt(rq_dashboard.blueprint)
    # First among the blueprint's hooks, so nothing of the dashboard runs for a stranger.
    app.before_request_funcs.setdefault(rq_dashboard.blueprint.name, []).insert(0, guard_dashboard)
