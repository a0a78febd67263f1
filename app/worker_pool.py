"""The worker side: an RQ worker with the app context, heartbeats and the reaper, and the pool that runs them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, worker_registration
from rq.worker_pool import WorkerPool

from app.generations import queue, reaper, statements
from app.jobs import put_back_in_line
from app.services import rebuild_after_fork, services

log = logging.getLogger(__name__)
PAUSE_POLL_SECONDS = 2.0
# What a Redis outage raises. RQ's work loop survives it only while waiting for a job: anywhere else
# (after a job, in its maintenance, on the way out) the worker would quit, and the pool would respawn
# workers that die again until Redis is back.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
REDIS_RETRY_MAX_SECONDS = 5.0


@contextmanager
def outage_tolerated(step: str) -> Iterator[None]:
    """Log a Redis outage during one of RQ's bookkeeping steps instead of letting it end the worker."""
    try:
        yield
    except REDIS_DOWN as exc:
        log.warning("%s skipped: Redis unavailable (%s)", step, exc)


def wait_for_redis(connection: Redis) -> None:
    """Block until Redis answers, retrying with backoff: a worker started during an outage waits, not dies."""
    delay = 1.0
    while True:
        try:
            connection.ping()
            return
        except REDIS_DOWN as exc:
            log.warning("Redis unavailable (%s); the worker starts when it answers (next try in %.0f s)", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_SECONDS)


class GenerationWorker(SimpleWorker):
    """Runs jobs in-process (no fork per job) so each worker keeps one pooled HTTP session."""

    app: Flask  # set on the class by bound_worker_class, so pool children (forked) inherit it
    # RQ doubles its wait after each failed dequeue up to 60 s; a Redis back after a short outage should
    # not leave the workers asleep for up to a minute more.
    max_connection_wait_time = REDIS_RETRY_MAX_SECONDS

    def __init__(self, *args, app: Flask | None = None, **kwargs) -> None:  # noqa: ANN002, ANN003
        if kwargs.get("connection") is not None:
            wait_for_redis(kwargs["connection"])  # RQ's constructor already talks to Redis
        super().__init__(*args, **kwargs)
        if app is not None:
            self.app = app
        self.housekeeper: reaper.Housekeeper | None = None

    def work(self, *args, **kwargs) -> bool:  # noqa: ANN002, ANN003
        """Run with an app context (RQ's failure callbacks write to the database) and a housekeeping thread."""
        if not kwargs.get("burst"):
            self.housekeeper = reaper.Housekeeper(self.app)
            self.housekeeper.start()
        try:
            with self.app.app_context():
                return super().work(*args, **kwargs)
        finally:
            if self.housekeeper is not None:
                self.housekeeper.stop()

    def perform_job(self, job, queue, execution) -> bool:  # noqa: ANN001
        """Give every job a context of its own, so each starts with a fresh database session."""
        with self.app.app_context():
            try:
                return super().perform_job(job, queue, execution)
            finally:
                # Nothing left open for the context's teardown, which would raise on a dropped connection.
                statements.release()

    def execute_job(self, job, queue) -> None:  # noqa: ANN001
        """Run a job; if Redis goes away around it, the worker lives on and an unfinished row goes back in line."""
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN as exc:
            # The row, not Redis, holds the outcome; one the job never got to is queued again.
            log.warning("Redis unavailable around job %s (%s)", job.id, exc)
            with self.app.app_context():
                put_back_in_line(job)

    def heartbeat(self, timeout=None, pipeline=None) -> None:  # noqa: ANN001
        """RQ's worker heartbeat, registering the worker again if Redis lost it (restarted empty)."""
        with outage_tolerated("worker heartbeat"):
            # Membership, not the key: RQ's own state writes recreate a bare key after an empty restart.
            if pipeline is None and self.birth_date is not None and not self.connection.sismember(
                    self.redis_workers_keys, self.key):
                self._register_again()
            super().heartbeat(timeout, pipeline)

    def _register_again(self) -> None:
        """Write this worker's record and registry entries again, so `rq info` and the dashboard see it."""
        log.warning("worker %s: Redis no longer knows this worker (restarted empty?); registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()

    def set_state(self, state: str, pipeline=None) -> None:  # noqa: ANN001
        """RQ's idle/busy flag for dashboards; not worth ending the worker over."""
        with outage_tolerated("worker state"):
            super().set_state(state, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's `rq suspend` check; during an outage the dequeue that follows waits for Redis instead."""
        with outage_tolerated("suspension check"):
            super().check_for_suspension(burst)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry clean-up; during an outage it is simply done next time."""
        with outage_tolerated("registry clean-up"):
            super().run_maintenance_tasks()

    def teardown(self) -> None:
        """RQ's sign-off; a worker stopping during an outage just leaves its record to expire."""
        with outage_tolerated("worker sign-off"):
            super().teardown()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):  # noqa: ANN001, ANN201
        """Take no job while the queue is paused (the API refused the account); the jobs wait in Redis."""
        redis = services(self.app).redis
        while queue.paused_reason(redis) and not self._stop_requested:
            if timeout is None:  # burst mode: nothing to do now
                return None
            self.heartbeat()
            time.sleep(PAUSE_POLL_SECONDS)
        if self._stop_requested:
            return None
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)


class PoolWorker(GenerationWorker):
    """A worker forked by the pool: it first replaces the connections it inherited."""

    def work(self, *args, **kwargs) -> bool:  # noqa: ANN002, ANN003
        """Rebuild connections, then work."""
        rebuild_after_fork(self.app)
        return super().work(*args, **kwargs)


def bound_worker_class(app: Flask) -> type[GenerationWorker]:
    """A worker class that carries this app, for the pool's forked children."""
    return type("BoundPoolWorker", (PoolWorker,), {"app": app})


def main(app: Flask) -> None:
    """Sweep what a previous run left, then run WORKER_CONCURRENCY workers until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with app.app_context():
        result = reaper.sweep(app, force=True)
        log.info("start-up sweep: %s", result)
        from app.extensions import db

        # Forked workers must not share the parent's database connections.
        db.session.remove()
        db.engine.dispose()
    app_services = services(app)
    pool = WorkerPool(
        [app_services.require_queue()],
        connection=app_services.require_redis(),
        num_workers=app.config["WORKER_CONCURRENCY"],
        worker_class=bound_worker_class(app),
    )
    pool.start()
