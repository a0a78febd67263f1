"""The connections and clients a process uses, built once with the app: Redis, queue, limiter, provider, stores."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from app.media_store.stores import Stores, build_stores
from app.providers.base import ImageProvider
from app.providers.demo import DemoProvider
from app.providers.rate_limit import RedisRateLimiter, parse_rate_limit
from app.providers.stability import StabilityClient

log = logging.getLogger(__name__)
# How long a worker's API call waits for the shared rate limiter's Redis to come back before the attempt
# counts as failed: a restart or failover takes seconds, and nothing is sent to the API meanwhile.
LIMITER_OUTAGE_WAIT = 30.0
LIMITER_RETRY_SECONDS = 1.0


NO_REDIS = ("REDIS_URL is not set, and no scripts/run.py is running in this folder: run this beside "
            "`python3 scripts/run.py` (it starts its own Redis), or set REDIS_URL")


class QueueUnavailable(RuntimeError):
    """Redis is not configured (or does not answer), so nothing can be queued; the message says what to do."""


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


class OutageTolerantLimiter:
    """The shared rate limiter, waiting out a short Redis outage instead of failing the API attempt at once."""

    def __init__(self, limiter: RedisRateLimiter, patience: float = LIMITER_OUTAGE_WAIT) -> None:
        self.limiter = limiter
        self.patience = patience

    def acquire(self, timeout: float | None = None) -> float:
        """Take a slot as RedisRateLimiter does; while Redis is unreachable, try again for up to `patience` s."""
        started = time.monotonic()
        while True:
            try:
                return self.limiter.acquire(timeout)
            except RedisError as exc:
                if time.monotonic() - started + LIMITER_RETRY_SECONDS > self.patience:
                    raise
                log.warning("rate limiter unavailable (%s); waiting for Redis", exc)
                time.sleep(LIMITER_RETRY_SECONDS)

    def lock_out(self, seconds: float | None = None) -> None:
        """Pause every worker after a 429."""
        self.limiter.lock_out(seconds)


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
            raise QueueUnavailable(NO_REDIS)
        return self.redis

    def require_answering_redis(self) -> Redis:
        """require_redis, and a PING: QueueUnavailable, naming REDIS_URL, when Redis does not answer."""
        redis = self.require_redis()
        try:
            redis.ping()
        except RedisError as exc:
            raise QueueUnavailable(f"Redis does not answer at REDIS_URL ({exc}): start it (python3 "
                                   "scripts/run.py starts its own) or correct REDIS_URL") from exc
        return redis

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


def slots_per_process(config: dict) -> int:
    """WORKER_CONCURRENCY spread over WORKER_PROCESSES (rounded up, so no slot is lost)."""
    return max(1, math.ceil(config["WORKER_CONCURRENCY"] / config["WORKER_PROCESSES"]))


def build_services(config: dict, in_worker: bool = False) -> Services:
    """Connect nothing yet, but build every client from validated settings, so a bad one fails now.

    A worker's API calls wait out a short Redis outage; a web request's balance check does not.
    """
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
            limit = config["STABILITY_RATE_LIMIT"]
            # Tests and benchmarks may give the setting as text, as the environment does.
            limit = parse_rate_limit(limit) if isinstance(limit, str) else limit
            limiter = RedisRateLimiter(redis, limit, lockout_seconds=config["STABILITY_LOCKOUT_SECONDS"])
            if in_worker:
                limiter = OutageTolerantLimiter(limiter)
        # One connection per slot this process may run, so no job waits for another's connection.
        slots = slots_per_process(config)
        provider = stability = StabilityClient(config["STABILITY_API_KEY"], config["STABILITY_API_BASE_URL"],
                                               timeout=config["STABILITY_TIMEOUT"], limiter=limiter,
                                               pool_size=max(10, slots))
    return Services(redis=redis, queue=queue, provider=provider, stability=stability, stores=build_stores(config))


def init_app(app: Flask) -> None:
    """Build this app's services."""
    app.extensions["services"] = build_services(app.config)


def rebuild_after_fork(app: Flask) -> None:
    """Give a forked child connections of its own instead of copies of its parent's sockets."""
    from app.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)
    app.extensions["services"] = build_services(app.config, in_worker=True)


def services(app: Flask | None = None) -> Services:
    """The services of this app (the current one by default)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return app.extensions["services"]
