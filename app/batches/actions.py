"""What a person can do to a batch's generations: cancel them, and retry the ones that failed."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from app.batches.service import queue_generations
from app.extensions import db
from app.models import UNFINISHED, Generation, Status, utcnow
from app.queueing import redis_connection
from app.storage import delete_file

log = logging.getLogger(__name__)
RETRYABLE = (Status.FAILED.value, Status.FILTERED.value, Status.CANCELED.value)
CANCELED_REASON = "Canceled"


def _cancel_jobs(job_ids: list[str]) -> None:
    """Take queued jobs out of Redis; a job already running finds its row canceled and discards its result."""
    for job_id in job_ids:
        try:
            Job.fetch(job_id, connection=redis_connection()).cancel()
        except (NoSuchJobError, InvalidJobOperation, RedisError):
            pass  # the row is canceled either way; the job then skips or discards


def cancel(where: sa.ColumnElement[bool]) -> int:
    """Cancel the unfinished generations matching `where`; return how many."""
    rows = db.session.execute(
        sa.update(Generation)
        .where(where, Generation.status.in_(UNFINISHED))
        .values(status=Status.CANCELED.value, error=CANCELED_REASON, finished_at=utcnow())
        .returning(Generation.job_id)
    ).all()
    db.session.commit()
    _cancel_jobs([job_id for (job_id,) in rows if job_id])
    return len(rows)


def cancel_generation(generation_id: int) -> int:
    """Cancel one generation if it is queued or running."""
    return cancel(Generation.id == generation_id)


def cancel_batch(batch_id: int) -> int:
    """Cancel every unfinished generation of a batch."""
    return cancel(Generation.batch_id == batch_id)


def retry_generation(generation_id: int) -> bool:
    """Queue a new attempt for a failed, filtered or canceled card, keeping the old outcome in its history."""
    generation = db.session.get(Generation, generation_id)
    if generation is None or generation.status not in RETRYABLE:
        return False
    entry = {"at": (generation.finished_at or utcnow()).isoformat(), "status": generation.status,
             "error": generation.error, "api_error_id": generation.api_error_id}
    old_files = (generation.file_name, generation.thumb_name)
    changed = db.session.execute(
        sa.update(Generation)
        .where(Generation.id == generation_id, Generation.status.in_(RETRYABLE))
        .values(status=Status.QUEUED.value, history=[*generation.history, entry], error=None, api_error_id=None,
                api_request_id=None, attempts=0, file_name=None, thumb_name=None, mime_type=None, byte_size=None,
                width=None, height=None, thumb_width=None, thumb_height=None, finish_reason=None, seed=None,
                started_at=None, finished_at=None)
    ).rowcount
    db.session.commit()
    if not changed:
        return False
    for name in old_files:
        delete_file(current_app.config["MEDIA_ROOT"], name)  # a blurred result is replaced, not kept twice
    db.session.refresh(generation)
    queue_generations([generation])
    return True
