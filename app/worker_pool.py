"""The worker side: an RQ worker with the app context, heartbeats and the reaper, and the pool that runs them."""

from __future__ import annotations

import logging
import time

from flask import Flask
from rq import SimpleWorker
from rq.worker_pool import WorkerPool

from app.generations import queue, reaper, statements
from app.services import rebuild_after_fork, services

log = logging.getLogger(__name__)
PAUSE_POLL_SECONDS = 2.0


class GenerationWorker(SimpleWorker):
    """Runs jobs in-process (no fork per job) so each worker keeps one pooled HTTP session."""

    app: Flask  # set on the class by bound_worker_class, so pool children (forked) inherit it

    def __init__(self, *args, app: Flask | None = None, **kwargs) -> None:  # noqa: ANN002, ANN003
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
