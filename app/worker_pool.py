"""The worker side: an RQ worker class with the app context, start-up recovery, and the pool."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker_pool import WorkerPool

from app import create_app
from app.batches.service import queue_generations
from app.extensions import db
from app.jobs import INTERRUPTED, fail_unfinished
from app.models import UNFINISHED, Generation, Status
from app.queueing import generation_queue, redis_connection

log = logging.getLogger(__name__)
LIVE_JOB_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


class GenerationWorker(SimpleWorker):
    """Runs jobs in-process (no fork per job) so each worker keeps one pooled HTTP session."""

    def __init__(self, *args, app: Flask | None = None, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        # Pool children are forked without an app; each builds its own so no connection is shared.
        self.app = app or create_app()

    def work(self, *args, **kwargs) -> bool:  # noqa: ANN002, ANN003
        """Keep an app context for RQ's housekeeping too: its failure callbacks write to the database."""
        with self.app.app_context():
            return super().work(*args, **kwargs)

    def perform_job(self, job, queue, execution) -> bool:  # noqa: ANN001
        """Give every job a context of its own, so each starts with a fresh database session."""
        with self.app.app_context():
            return super().perform_job(job, queue, execution)


def _job_is_live(job_id: str | None, connection) -> bool:  # noqa: ANN001
    """True when RQ still holds a job that will run or is running."""
    if not job_id:
        return False
    try:
        return Job.fetch(job_id, connection=connection).get_status() in LIVE_JOB_STATES
    except NoSuchJobError:
        return False


def recover_unfinished(app: Flask) -> tuple[int, int]:
    """Requeue queued rows whose job Redis lost, fail running rows whose job is gone; return both counts."""
    connection = redis_connection(app)
    with app.app_context():
        rows = db.session.scalars(sa.select(Generation).where(Generation.status.in_(UNFINISHED))).all()
        lost = [g for g in rows if not _job_is_live(g.job_id, connection)]
        lost_queued = [g for g in lost if g.status == Status.QUEUED.value]
        lost_running = [(g.id, g.job_id) for g in lost if g.status == Status.RUNNING.value]
        queue_generations(lost_queued)
        requeued = len(lost_queued)
        # Guarded by the job id: a row that was meanwhile retried belongs to a live job.
        failed = sum(fail_unfinished(gid, INTERRUPTED, job_id) for gid, job_id in lost_running)
        # Forked workers must not share the parent's database connections.
        db.session.remove()
        db.engine.dispose()
    return requeued, failed


def main(app: Flask) -> None:
    """Recover what a previous run left, then run WORKER_CONCURRENCY workers until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    requeued, failed = recover_unfinished(app)
    if requeued or failed:
        log.info("recovered unfinished generations: %d requeued, %d marked failed", requeued, failed)
    pool = WorkerPool(
        [generation_queue(app)],
        connection=redis_connection(app),
        num_workers=app.config["WORKER_CONCURRENCY"],
        worker_class=GenerationWorker,
    )
    pool.start()
