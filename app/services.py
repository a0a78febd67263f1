"""The connections and clients a process uses, built once with the app: Redis, queue, limiter, provider, stores."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from app.media_store.stores import Stores, build_stores
from app.providers.base import ImageProvider
from app.providers.demo import DemoProvider
from app.providers.stability import StabilityClient
from app.rate_limit import RedisRateLimiter


class QueueUnavailable(RuntimeError):
    """Redis is not configured, so nothing can be queued."""


class InFlight:
    """The generations this process is working on right now (job id -> generation id), for heartbeats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, int] = {}

    def add(self, job_id: str, generation_id: int) -> None:
        """Note a job this process has claimed."""
        with self._lock:
            self._jobs[job_id] = generation_id

    def discard(self, job_id: str) -> None:
        """Forget a job that ended."""
        with self._lock:
            self._jobs.pop(job_id, None)

    def job_ids(self) -> list[str]:
        """The jobs in flight now."""
        with self._lock:
            return list(self._jobs)


@dataclass
class Services:
    """What a process needs to reach the outside world; one per app."""

    redis: Redis | None
    queue: Queue | None
    provider: ImageProvider
    stability: StabilityClient | None
    stores: Stores
    in_flight: InFlight = field(default_factory=InFlight)

    def require_redis(self) -> Redis:
        """The Redis connection, or QueueUnavailable when REDIS_URL is not set."""
        if self.redis is None:
            raise QueueUnavailable("REDIS_URL is not set: run `python3 scripts/run.py`, which starts a local Redis")
        return self.redis

    def require_queue(self) -> Queue:
        """The generation queue, or QueueUnavailable when REDIS_URL is not set."""
        self.require_redis()
        assert self.queue is not None
        return self.queue

    def close(self) -> None:
        """Release sockets (tests build many apps in one process)."""
        if self.stability is not None:
            self.stability.session.close()
        if self.redis is not None:
            self.redis.close()
        if self.stores.s3 is not None:
            self.stores.s3.client.close()


def build_services(config: dict) -> Services:
    """Connect nothing yet, but build every client from validated settings, so a bad one fails now."""
    redis = None
    if config.get("REDIS_URL"):
        redis = Redis.from_url(config["REDIS_URL"], socket_connect_timeout=5, socket_timeout=30,
                               health_check_interval=30)
    queue = Queue(config["RQ_QUEUE_NAME"], connection=redis) if redis is not None else None
    stability = None
    provider: ImageProvider = DemoProvider(delay=config["DEMO_PROVIDER_DELAY"])
    if config.get("STABILITY_API_KEY"):
        limiter = None
        if redis is not None:
            limiter = RedisRateLimiter(redis, config["STABILITY_RATE_LIMIT"],
                                       lockout_seconds=config["STABILITY_LOCKOUT_SECONDS"])
        provider = stability = StabilityClient(config["STABILITY_API_KEY"], config["STABILITY_API_BASE_URL"],
                                               timeout=config["STABILITY_TIMEOUT"], limiter=limiter)
    return Services(redis=redis, queue=queue, provider=provider, stability=stability, stores=build_stores(config))


def init_app(app: Flask) -> None:
    """Build this app's services."""
    app.extensions["services"] = build_services(app.config)


def rebuild_after_fork(app: Flask) -> None:
    """Give a forked child connections of its own instead of copies of its parent's sockets."""
    from app.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)
    app.extensions["services"] = build_services(app.config)


def services(app: Flask | None = None) -> Services:
    """The services of this app (the current one by default)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions["services"]
