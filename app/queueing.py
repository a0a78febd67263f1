"""The RQ queue the web app fills and the workers drain; jobs carry generation ids only."""

from __future__ import annotations

import uuid

from flask import Flask, current_app
from redis import Redis
from rq import Callback, Queue


def job_timeout(config: dict) -> int:
    """Longer than every attempt's timeouts, backoffs and a lockout, so the job itself records why it ended."""
    from app.providers.stability import RATE_LIMIT_WAIT

    connect, read = config["STABILITY_TIMEOUT"]
    attempts = config["STABILITY_MAX_ATTEMPTS"]
    # Each attempt may first wait for a rate-limit slot (a lockout included), then for the API.
    per_attempt = RATE_LIMIT_WAIT + connect + read
    backoffs = config["STABILITY_RETRY_BASE_DELAY"] * (2 ** attempts)
    return int(attempts * per_attempt + backoffs + 60)


def redis_connection(app: Flask | None = None) -> Redis:
    """Return the app's Redis connection, created once per app."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    connection = app.extensions.get("redis")
    if connection is None:
        url = app.config.get("REDIS_URL")
        if not url:
            raise RuntimeError("REDIS_URL is not set: run `python3 scripts/run.py`, which starts a local Redis")
        connection = app.extensions["redis"] = Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    return connection


def generation_queue(app: Flask | None = None) -> Queue:
    """Return the queue generation jobs go to."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return Queue(app.config["RQ_QUEUE_NAME"], connection=redis_connection(app))


def new_job_id() -> str:
    """A job id chosen before enqueueing, so the row can hold it before any worker sees the job."""
    return uuid.uuid4().hex


def enqueue_generation(generation_id: int, job_id: str) -> None:
    """Queue the job that makes one generation's image, under the id its row already holds."""
    generation_queue().enqueue_call(
        "app.jobs.run_generation",
        args=(generation_id,),
        job_id=job_id,
        timeout=job_timeout(current_app.config),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"generation {generation_id}",
        on_failure=Callback("app.jobs.on_job_failure"),
    )
