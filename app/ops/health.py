"""Probes for orchestrators: /healthz says the process answers, /readyz that what it depends on does too."""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from app.extensions import csrf, db
from app.generations.queue import live_worker_count
from app.services import QueueUnavailable, services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
csrf.exempt(bp)  # GET only, and probes carry no session

OK = "ok"


def _probe_response(body: dict, status: int) -> Response:
    """JSON that no proxy or browser keeps: every probe must reach the process."""
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process serves requests. No dependency is asked, so an outage elsewhere never restarts it."""
    return _probe_response({"status": "ok"}, 200)


def check_database() -> str:
    """The database answers SELECT 1."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return "unreachable"
    return OK


def check_redis() -> str:
    """The app's Redis answers PING."""
    try:
        services().require_redis().ping()
    except QueueUnavailable:  # REDIS_URL unset
        return "not configured"
    except RedisError:
        return "unreachable"
    return OK


def check_media() -> str:
    """The store new images go to takes files: MEDIA_ROOT writable, or the S3 bucket reachable."""
    return services().stores.current.check()


def check_workers() -> str:
    """At least one worker process sent its heartbeat within the last minute (busy ones too: a thread beats)."""
    return OK if live_worker_count(services().require_redis()) else "none running"


def _run(name: str, check: Callable[[], str]) -> str:
    """A check's answer; anything unexpected is logged and reported as 'error', never raised."""
    try:
        return check()
    except Exception:
        log.exception("readiness check %s failed unexpectedly", name)
        return "error"


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: database, Redis, media storage and a live worker; 503 naming what failed (never a 500)."""
    checks = {"database": _run("database", check_database), "redis": _run("redis", check_redis),
              "media": _run("media", check_media)}
    # Workers are found through Redis: without it they cannot be counted, only not known.
    checks["workers"] = _run("workers", check_workers) if checks["redis"] == OK else "unknown"
    ready = all(answer == OK for answer in checks.values())
    return _probe_response({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)
