"""Every status change of a generation, in one place.

Each transition is one conditional UPDATE guarded by the status it starts from and, where a job is
involved, by the row's current job id: a transition that lost a race (a cancel, a retry, a reaper on
another host) matches no row and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from app.extensions import db
from app.generations import queue, statements
from app.generations.options import DEFAULT_OPTIONS, GenerationOptions
from app.models import UNFINISHED, Batch, Generation, Status, appended_history, utcnow
from app.services import QueueUnavailable, services
from app.storage import delete_file

log = logging.getLogger(__name__)

QUEUE_DOWN = "Could not queue this image: the job queue is unavailable. Try again shortly."
INTERRUPTED = "The worker stopped before this image was finished"
WORKER_STOPPED = "Worker stopped; retrying"
CANCELED = "Canceled"
RETRYABLE = (Status.FAILED.value, Status.FILTERED.value, Status.CANCELED.value)
# What a new attempt starts without: the previous outcome's fields.
CLEARED_OUTCOME = {
    "error": None, "api_error_id": None, "api_request_id": None, "file_name": None, "thumb_name": None,
    "mime_type": None, "byte_size": None, "width": None, "height": None, "thumb_width": None,
    "thumb_height": None, "finish_reason": None, "seed": None, "started_at": None, "finished_at": None,
}


def _owned(generation_id: int, job_id: str | None) -> sa.ColumnElement[bool]:
    """The row, as long as this job is still the one it waits for (a retry or requeue gives it a new job id)."""
    condition = Generation.id == generation_id
    return condition & (Generation.job_id == job_id) if job_id else condition


def _update(where: sa.ColumnElement[bool], **values: object) -> int:
    """Apply one guarded UPDATE and commit; return how many rows it changed."""
    return len(statements.write(where, **values))


def _load(generation_id: int) -> Generation | None:
    """The row, read afresh (on a new connection if the last one was dropped)."""
    return statements.read(sa.select(Generation).where(Generation.id == generation_id)).scalar_one_or_none()


# --- create and enqueue -------------------------------------------------------------------------

def create_batch(prompts: list[str], options: GenerationOptions = DEFAULT_OPTIONS) -> Batch:
    """Store a batch with one queued generation per prompt (job ids chosen now), commit, then enqueue them."""
    app_services = services()
    now = utcnow()
    attempts = current_app.config["STABILITY_MAX_ATTEMPTS"]
    batch = Batch(created_at=now, generations=[
        Generation(position=i, prompt=text, provider=app_services.provider.name, created_at=now, heartbeat_at=now,
                   max_attempts=attempts, status=Status.QUEUED.value, job_id=queue.new_job_id(),
                   **Generation.option_columns(options))
        for i, text in enumerate(prompts)
    ])
    db.session.add(batch)
    # Committed first: a worker that picks up a job must find its row. A crash before the enqueue
    # below leaves queued rows without jobs, which the reaper finds and enqueues.
    db.session.commit()
    enqueue(batch.generations)
    return batch


def enqueue(generations: list[Generation], fail_if_down: bool = True) -> int:
    """Push each row's job; if the queue is down, fail the rows (or leave them to the reaper); return the count."""
    app_services = services()
    timeout = queue.job_timeout(current_app.config)
    pending = [(g.id, g.job_id) for g in generations]
    not_queued = []
    for generation_id, job_id in pending:
        try:
            queue.enqueue_job(app_services.require_queue(), generation_id, job_id, timeout)
        except (RedisError, QueueUnavailable, OSError):
            log.exception("could not enqueue generation %s", generation_id)
            not_queued.append((generation_id, job_id))
    if fail_if_down:
        for generation_id, job_id in not_queued:
            _update(_owned(generation_id, job_id) & (Generation.status == Status.QUEUED.value),
                    status=Status.FAILED.value, error=QUEUE_DOWN, finished_at=utcnow())
    return len(pending) - len(not_queued)


# --- what a job does --------------------------------------------------------------------------

def claim(generation_id: int, job_id: str | None) -> Generation | None:
    """Move a queued row to running for this job, so a duplicate or outdated job cannot run it."""
    now = utcnow()
    claimed = _update(_owned(generation_id, job_id) & (Generation.status == Status.QUEUED.value),
                      status=Status.RUNNING.value, started_at=now, heartbeat_at=now)
    if not claimed:
        log.warning("generation %s is not queued for job %s; job skipped", generation_id, job_id)
        return None
    return _load(generation_id)


def begin_attempt(generation_id: int, job_id: str | None, attempt: int, note: str | None) -> bool:
    """Record that attempt number `attempt` starts; False if the row was canceled or taken over meanwhile."""
    return bool(_update(_owned(generation_id, job_id) & (Generation.status == Status.RUNNING.value),
                        attempts=attempt, error=note, heartbeat_at=utcnow()))


def is_running(generation_id: int, job_id: str | None) -> bool:
    """Whether the row still runs for this job (nobody canceled or retried it while the job slept)."""
    status = statements.read(sa.select(Generation.status).where(_owned(generation_id, job_id))).scalar()
    return status == Status.RUNNING.value


def status_of(generation_id: int) -> str | None:
    """The row's status now, or None if it is gone."""
    return statements.read(sa.select(Generation.status).where(Generation.id == generation_id)).scalar()


def heartbeat(job_ids: Iterable[str]) -> int:
    """Mark the running rows of these jobs as alive now, in one UPDATE; return how many."""
    job_ids = list(job_ids)
    if not job_ids:
        return 0
    return _update(Generation.job_id.in_(job_ids) & (Generation.status == Status.RUNNING.value),
                   heartbeat_at=utcnow())


def finish(generation_id: int, job_id: str | None, filtered: bool, **outcome: object) -> bool:
    """Record the stored image and make the row final, if it still runs for this job."""
    status = Status.FILTERED.value if filtered else Status.SUCCEEDED.value
    finished = _update(_owned(generation_id, job_id) & (Generation.status == Status.RUNNING.value),
                       status=status, finished_at=utcnow(), **outcome)
    if not finished:
        log.info("generation %s was canceled or taken over while running; its result is discarded", generation_id)
    return bool(finished)


def fail(generation_id: int, job_id: str | None, reason: str, error_id: str | None = None,
         request_id: str | None = None) -> bool:
    """Make a queued or running row failed with a reason (for this job, if given); return whether it changed."""
    return bool(_update(_owned(generation_id, job_id) & Generation.status.in_(UNFINISHED),
                        status=Status.FAILED.value, error=reason, api_error_id=error_id,
                        api_request_id=request_id, finished_at=utcnow()))


def requeue(generation_id: int, job_id: str | None, note: str | None, attempts: int | None = None) -> bool:
    """Put an unfinished row back in the queue under a new job id (worker stopping, queue paused); True if it was."""
    values: dict[str, object] = {"error": note}
    if attempts is not None:
        values["attempts"] = attempts
    return bool(_requeue_where(_owned(generation_id, job_id) & Generation.status.in_(UNFINISHED), **values))


# --- what a person does -----------------------------------------------------------------------

def cancel(where: sa.ColumnElement[bool]) -> int:
    """Cancel the unfinished generations matching `where`; return how many."""
    rows = statements.write(where & Generation.status.in_(UNFINISHED), returning=(Generation.job_id,),
                            status=Status.CANCELED.value, error=CANCELED, finished_at=utcnow())
    queue.cancel_jobs(services().redis, [job_id for (job_id,) in rows if job_id])
    return len(rows)


def cancel_generation(generation_id: int) -> int:
    """Cancel one generation if it is queued or running."""
    return cancel(Generation.id == generation_id)


def cancel_batch(batch_id: int) -> int:
    """Cancel every unfinished generation of a batch."""
    return cancel(Generation.batch_id == batch_id)


def retry(generation_id: int) -> bool:
    """Queue a new attempt for a failed, filtered or canceled card, keeping the old outcome in its history."""
    generation = db.session.get(Generation, generation_id)
    if generation is None or generation.status not in RETRYABLE:
        return False
    entry = {"at": (generation.finished_at or utcnow()).isoformat(), "status": generation.status,
             "error": generation.error, "api_error_id": generation.api_error_id}
    old_files = (generation.file_name, generation.thumb_name)
    changed = _update(
        (Generation.id == generation_id) & Generation.status.in_(RETRYABLE) & (Generation.job_id == generation.job_id),
        status=Status.QUEUED.value, history=appended_history(generation.history, entry), attempts=0,
        job_id=queue.new_job_id(), heartbeat_at=utcnow(), **CLEARED_OUTCOME)
    if not changed:
        return False
    for name in old_files:
        delete_file(current_app.config["MEDIA_ROOT"], name)  # a blurred result is replaced, not kept twice
    db.session.refresh(generation)
    enqueue([generation])
    return True


# --- what the reaper does ---------------------------------------------------------------------

def reap_stale_running(stale_before: datetime, limit: int = 500) -> tuple[int, int]:
    """Requeue (attempts left) or fail (none left) running rows whose worker stopped heartbeating; return the counts."""
    stale = (Generation.status == Status.RUNNING.value) & (
        Generation.heartbeat_at.is_(None) | (Generation.heartbeat_at < stale_before))
    rows = statements.read(sa.select(Generation.id, Generation.job_id, Generation.attempts,
                                        Generation.max_attempts).where(stale).limit(limit)).all()
    requeued = failed = 0
    for generation_id, job_id, attempts, max_attempts in rows:
        # The same staleness condition again: a row that heartbeat meanwhile is alive after all.
        if attempts < max_attempts:
            requeued += _requeue_where(_owned(generation_id, job_id) & stale, error=WORKER_STOPPED)
        else:
            failed += _update(_owned(generation_id, job_id) & stale, status=Status.FAILED.value,
                              error=INTERRUPTED, finished_at=utcnow())
    return requeued, failed


def queued_without_heartbeat_since(since: datetime, after_id: int = 0,
                                    limit: int = 1000) -> list[tuple[int, str | None]]:
    """Queued rows (id, job id) not queued again since `since`, by id after `after_id`: jobs Redis may have lost."""
    return [(gid, job_id) for gid, job_id in statements.read(
        sa.select(Generation.id, Generation.job_id)
        .where(Generation.status == Status.QUEUED.value, Generation.id > after_id,
               Generation.heartbeat_at.is_(None) | (Generation.heartbeat_at < since))
        .order_by(Generation.id).limit(limit)
    )]


def requeue_lost(rows: list[tuple[int, str | None]]) -> int:
    """Enqueue again queued rows whose job is gone, each once: only the sweep that changes the job id enqueues."""
    return sum(_requeue_where(_owned(generation_id, job_id) & (Generation.status == Status.QUEUED.value))
               for generation_id, job_id in rows)


def _requeue_where(where: sa.ColumnElement[bool], **values: object) -> int:
    """Give the matching row a new job id and enqueue it; 0 if another sweep or a person got there first."""
    rows = statements.write(where, status=Status.QUEUED.value, job_id=queue.new_job_id(), heartbeat_at=utcnow(),
                            started_at=None, **values)
    if not rows:
        return 0
    generation = _load(rows[0][0])
    if generation is not None:  # None only if it was deleted that very moment
        enqueue([generation], fail_if_down=False)
    return 1


def seconds_ago(seconds: float) -> datetime:
    """The time `seconds` before now."""
    return utcnow() - timedelta(seconds=seconds)
