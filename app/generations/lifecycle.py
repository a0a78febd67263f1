"""Every status change of a generation, in one place.

Each transition is one conditional UPDATE guarded by the status it starts from and, where a job is
involved, by the row's current job id: a transition that lost a race (a cancel, a retry, a reaper on
another host) matches no row and changes nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from app.extensions import db
from app.generations import queue, seeds, spending, statements
from app.media_store import orphans
from app.models import UNFINISHED, Batch, Generation, Status, User, appended_history, utcnow
from app.providers.operations import GENERATE, OPERATIONS, UPLOAD
from app.providers.options import DEFAULT_OPTIONS, MODELS, OPTION_NAMES, GenerationOptions, column_of
from app.services import QueueUnavailable, services
from app.webhooks import events as webhook_events

log = logging.getLogger(__name__)
# One image of a planned batch (app/variations/plan.py): its prompt, options and cell in the batch's grid.
PlannedRow = tuple[str, GenerationOptions, dict[str, int] | None]

QUEUE_DOWN = "Could not queue this image: the job queue is unavailable. Try again shortly."
INTERRUPTED = "The worker stopped before this image was finished"
WORKER_STOPPED = "Worker stopped; retrying"
CANCELED = "Canceled"
RETRYABLE = (Status.FAILED, Status.FILTERED, Status.CANCELED)
# What a new attempt starts without: the previous outcome's fields.
CLEARED_OUTCOME = {
    "error": None, "api_error_id": None, "api_request_id": None, "file_name": None, "thumb_name": None,
    "mime_type": None, "byte_size": None, "width": None, "height": None, "thumb_width": None,
    "thumb_height": None, "finish_reason": None, "seed": None, "started_at": None, "finished_at": None,
    "result_id": None,  # a retried async operation is sent again: the last request's answer was its outcome
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

def create_batch(owner: User, prompts: list[str], options: GenerationOptions = DEFAULT_OPTIONS,
                 before_commit: Callable[[Batch], None] | None = None, images_per_prompt: int = 1,
                 expected_credits: float | None = None, images: Sequence[PlannedRow] | None = None,
                 grid: dict | None = None) -> Batch:
    """Reserve the cost, store a batch with `images_per_prompt` queued generations per prompt (job ids chosen
    now), then enqueue. A locked seed counts up per image of a prompt (seeds.nth_seed).

    The reservation and the rows are one transaction: over the allowance, spending.OverAllowance is raised
    and nothing is created. `before_commit(batch)` joins that transaction once the rows have ids (the API
    keeps its idempotent answer there); if it raises, nothing is created either. With `expected_credits` (the
    price the submitter was shown), a batch that costs anything else raises PriceChanged before any of it.
    """
    if images is None:
        images = [(text, replace(options, seed=seeds.nth_seed(options.seed, n)), None)
                  for text in prompts for n in range(images_per_prompt)]
    rows = [NewImage(text, image_options, price_of(image_options), {"cell": cell})
            for text, image_options, cell in images]
    return create_images(owner, rows, before_commit, images_per_prompt, expected_credits, grid=grid)


@dataclass(frozen=True)
class NewImage:
    """One generation a batch is to hold: its prompt, options, price, and any other columns (an operation's)."""

    prompt: str
    options: GenerationOptions
    credits: float
    columns: dict[str, object] = field(default_factory=dict)


def create_images(owner: User, images: list[NewImage], before_commit: Callable[[Batch], None] | None = None,
                  images_per_prompt: int = 1, expected_credits: float | None = None, grid: dict | None = None) -> Batch:
    """What create_batch does, for rows of any kind (text-to-image, operations on images): reserve their total,
    store the batch and its queued rows in that one transaction, then enqueue them."""
    app_services = services()
    now = utcnow()
    attempts = current_app.config["STABILITY_MAX_ATTEMPTS"]
    total = sum(image.credits for image in images)
    check_price(total, expected_credits)
    db.session.commit()  # start the transaction with the reservation's write (SQLite takes its lock there)
    month = spending.reserve(owner, total)
    batch = Batch(owner_id=owner.id, created_at=now, images_per_prompt=images_per_prompt, grid=grid, generations=[
        Generation(position=i, prompt=image.prompt, provider=app_services.provider.name, created_at=now,
                   heartbeat_at=now, max_attempts=attempts, status=Status.QUEUED, job_id=queue.new_job_id(),
                   owner_id=owner.id, credits=image.credits, credits_month=month,
                   **Generation.option_columns(image.options), **image.columns)
        for i, image in enumerate(images)
    ])
    db.session.add(batch)
    if before_commit is not None:
        db.session.flush()
        try:
            before_commit(batch)
        except Exception:
            db.session.rollback()  # the reservation goes with it
            raise
    # Committed first: a worker that picks up a job must find its row. A crash before the enqueue
    # below leaves queued rows without jobs, which the reaper finds and enqueues.
    db.session.commit()
    enqueue(batch.generations)
    return batch


def create_upload(owner: User, **outcome: object) -> Generation:
    """Record a stored upload as its owner's one-image batch, finished from the start: made by nobody, free."""
    now = utcnow()
    generation = Generation(position=0, prompt="", operation=UPLOAD, provider=UPLOAD, status=Status.SUCCEEDED,
                            owner_id=owner.id, credits=0, attempts=1, max_attempts=1, created_at=now,
                            started_at=now, finished_at=now, **outcome)
    db.session.add(Batch(owner_id=owner.id, created_at=now, generations=[generation]))
    db.session.commit()
    return generation


def price_of(options: GenerationOptions, operation: str = GENERATE) -> float:
    """Credits one image with these options costs (what the form shows, and what is reserved): the model's for
    text-to-image, the operation's (app/providers/operations.py) for an image made from an image, none for an
    upload."""
    if operation == GENERATE:
        return MODELS[options.model].credits
    if operation == UPLOAD:
        return 0.0
    return OPERATIONS[operation].price(options.model)


class PriceChanged(Exception):
    """The batch costs other than the price its submitter was shown; nothing was created."""

    def __init__(self, credits: float, expected: float) -> None:
        self.credits, self.expected = credits, expected
        super().__init__(f"The price changed: now {credits:g} credits.")


def check_price(credits: float, expected: float | None) -> None:
    """PriceChanged unless `expected` (None: not stated) is this price; a NaN never is."""
    if expected is not None and not math.isclose(credits, expected, rel_tol=0, abs_tol=1e-9):
        raise PriceChanged(credits, expected)


def enqueue(generations: list[Generation], fail_if_down: bool = True) -> int:
    """Push each row's job; if the queue is down, fail the rows (or leave them to the reaper); return the count."""
    app_services = services()
    timeout = queue.job_timeout(current_app.config)
    base = current_app.config["RQ_QUEUE_NAME"]
    pending = [(g.id, g.job_id, queue.queue_name(base, g.owner_id)) for g in generations]
    not_queued = []
    for generation_id, job_id, name in pending:
        try:
            queue.enqueue_job(app_services.require_redis(), name, generation_id, job_id, timeout)
        except (RedisError, QueueUnavailable, OSError):
            log.exception("could not enqueue generation %s", generation_id)
            not_queued.append((generation_id, job_id))
    if fail_if_down:
        for generation_id, job_id in not_queued:
            _end(_owned(generation_id, job_id) & (Generation.status == Status.QUEUED), refund=sa.true(),
                 status=Status.FAILED, error=QUEUE_DOWN)
    return len(pending) - len(not_queued)


# --- what a job does --------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    """What a job needs of the row it claimed, read in the claiming UPDATE: no lazy load holds a database
    connection while the job waits for the API."""

    id: int
    prompt: str
    options: GenerationOptions
    attempts: int  # counting the attempt the claim began
    max_attempts: int
    note: str | None
    # What it is made from (app/providers/operations.py): "generate", or an operation on source_id.
    operation: str = GENERATE
    source_id: int | None = None
    operation_params: dict | None = None
    mask_name: str | None = None
    storage: str | None = None  # the store holding the mask
    result_id: str | None = None  # an async operation already accepted: poll it, never send it again


CLAIMED_COLUMNS = (Generation.id, Generation.prompt, Generation.attempts, Generation.max_attempts, Generation.error,
                   Generation.operation, Generation.source_id, Generation.operation_params, Generation.mask_name,
                   Generation.storage, Generation.result_id,
                   *(getattr(Generation, column_of(name)) for name in OPTION_NAMES))


def _claimed(row: sa.Row) -> Claimed:
    """A Claimed from a row of CLAIMED_COLUMNS."""
    gid, prompt, attempts, max_attempts, error, operation, source_id, params, mask, storage, result_id, *values = row
    options = GenerationOptions(**dict(zip(OPTION_NAMES, values, strict=True)))
    return Claimed(gid, prompt, options, attempts, max_attempts, error, operation, source_id, params, mask, storage,
                   result_id)


def claim(generation_id: int, job_id: str | None) -> Claimed | None:
    """Move a queued row to running for this job, so a duplicate or outdated job cannot run it, and begin its next
    attempt in the same UPDATE (Claimed.attempts is that attempt's number)."""
    now = utcnow()
    # Only the reaper's note carries over into the new attempt; a pause's reason is history now.
    note = sa.case((Generation.error == WORKER_STOPPED, Generation.error), else_=None)
    rows = statements.write(_owned(generation_id, job_id) & (Generation.status == Status.QUEUED),
                            returning=CLAIMED_COLUMNS, status=Status.RUNNING, started_at=now, heartbeat_at=now,
                            attempts=Generation.attempts + 1, error=note)
    row = rows[0] if rows else None
    if row is None:
        log.warning("generation %s is not queued for job %s; job skipped", generation_id, job_id)
        return None
    return _claimed(row)


def await_result(generation_id: int, job_id: str | None, result_id: str) -> bool:
    """Record that the API accepted this running row's async request under `result_id`: from now on it is polled,
    never sent again. False if the row was canceled or taken over meanwhile."""
    return bool(_update(_owned(generation_id, job_id) & (Generation.status == Status.RUNNING),
                        result_id=result_id, heartbeat_at=utcnow()))


def resume_waiting(generation_id: int, job_id: str | None) -> Claimed | None:
    """A poll of a waiting async row: beat its heartbeat (it is alive, only waiting) and read what the poll needs;
    None if it no longer waits for this job (canceled, finished, or requeued by the reaper under a new job)."""
    rows = statements.write(_owned(generation_id, job_id) & (Generation.status == Status.RUNNING)
                            & Generation.result_id.is_not(None), returning=CLAIMED_COLUMNS, heartbeat_at=utcnow())
    return _claimed(rows[0]) if rows else None


def begin_attempt(generation_id: int, job_id: str | None, attempt: int, note: str | None) -> bool:
    """Record that retry number `attempt` starts; False if the row was canceled or taken over meanwhile."""
    return bool(_update(_owned(generation_id, job_id) & (Generation.status == Status.RUNNING),
                        attempts=attempt, error=note, heartbeat_at=utcnow()))


def status_of(generation_id: int) -> str | None:
    """The row's status now, or None if it is gone."""
    return statements.read(sa.select(Generation.status).where(Generation.id == generation_id)).scalar()


def heartbeat(job_ids: Iterable[str]) -> int:
    """Mark the running rows of these jobs as alive now, in one UPDATE; return how many."""
    job_ids = list(job_ids)
    if not job_ids:
        return 0
    return _update(Generation.job_id.in_(job_ids) & (Generation.status == Status.RUNNING),
                   heartbeat_at=utcnow())


def finish(generation_id: int, job_id: str | None, filtered: bool, **outcome: object) -> bool:
    """Record the stored image and make the row final, if it still runs for this job."""
    status = Status.FILTERED if filtered else Status.SUCCEEDED
    finished = _update(_owned(generation_id, job_id) & (Generation.status == Status.RUNNING),
                       status=status, finished_at=utcnow(), **outcome)
    if not finished:
        log.info("generation %s was canceled or taken over while running; its result is discarded", generation_id)
    else:
        webhook_events.generations_ended([generation_id])
    return bool(finished)


def fail(generation_id: int, job_id: str | None, reason: str, error_id: str | None = None,
         request_id: str | None = None, silent_since: datetime | None = None) -> bool:
    """Make a queued or running row failed with a reason (for this job, if given), refunding its reservation.

    With `silent_since`, only if its worker has not beaten for it since then (it may be alive after all).
    """
    where = _owned(generation_id, job_id) & Generation.status.in_(UNFINISHED)
    if silent_since is not None:
        where &= Generation.heartbeat_at.is_(None) | (Generation.heartbeat_at < silent_since)
    return bool(_end(where, refund=sa.true(), status=Status.FAILED, error=reason, api_error_id=error_id,
                     api_request_id=request_id))


def _end(where: sa.ColumnElement[bool], refund: sa.ColumnElement[bool], **values: object) -> list[str | None]:
    """Make matching unfinished rows final, returning their job ids.

    Rows where `refund` holds (evaluated on the row before the change) give their reservation back in the
    same transaction: once, since only an unfinished row can end.
    """
    rows = statements.write(
        where, returning=(Generation.owner_id, Generation.credits, Generation.credits_month, Generation.refunded,
                          Generation.job_id, Generation.id),
        before_commit=lambda rows: spending.refund(
            (owner_id, credits, month) for owner_id, credits, month, refunded, *_ in rows if refunded),
        finished_at=utcnow(), refunded=sa.case((refund, sa.true()), else_=sa.false()), **values)
    webhook_events.generations_ended(row[-1] for row in rows)
    return [job_id for *_, job_id, _generation_id in rows]


def requeue(generation_id: int, job_id: str | None, note: str | None, attempts: int | None = None) -> bool:
    """Put an unfinished row back in the queue under a new job id (worker stopping, queue paused); True if it was."""
    values: dict[str, object] = {"error": note}
    if attempts is not None:
        values["attempts"] = attempts
    return bool(_requeue_where(_owned(generation_id, job_id) & Generation.status.in_(UNFINISHED), **values))


def requeue_interrupted(generation_id: int, job_id: str | None) -> bool:
    """A worker stopping before its job finished: back in line, the interrupted attempt not counted."""
    return bool(_requeue_where(_owned(generation_id, job_id) & Generation.status.in_(UNFINISHED),
                               error=WORKER_STOPPED,
                               attempts=sa.case((Generation.attempts > 0, Generation.attempts - 1), else_=0)))


# --- what a person does -----------------------------------------------------------------------

def cancel(where: sa.ColumnElement[bool]) -> int:
    """Cancel the unfinished generations matching `where`; a queued one (never sent) gets its credits back, unless
    it is an async operation the API already accepted (queued again to be polled)."""
    job_ids = _end(where & Generation.status.in_(UNFINISHED),
                   refund=(Generation.status == Status.QUEUED) & Generation.result_id.is_(None),
                   status=Status.CANCELED, error=CANCELED)
    queue.cancel_jobs(services().redis, [job_id for job_id in job_ids if job_id])
    return len(job_ids)


def cancel_generation(generation_id: int) -> int:
    """Cancel one generation if it is queued or running."""
    return cancel(Generation.id == generation_id)


def cancel_batch(batch_id: int) -> int:
    """Cancel every unfinished generation of a batch."""
    return cancel(Generation.batch_id == batch_id)


def retry(generation_id: int) -> bool:
    """Queue a new attempt for a failed, filtered or canceled card (reserving its cost again), keeping its history.

    Raises spending.OverAllowance, changing nothing, when the owner has too little left this month.
    """
    generation = db.session.get(Generation, generation_id)
    if generation is None or generation.status not in RETRYABLE:
        return False
    entry = {"at": (generation.finished_at or utcnow()).isoformat(), "status": generation.status,
             "error": generation.error, "api_error_id": generation.api_error_id}
    old_files, old_storage = (generation.file_name, generation.thumb_name), generation.storage
    price, owner = price_of(generation.options, generation.operation), generation.owner
    db.session.commit()  # the reservation's write starts the transaction (see create_batch)
    month = spending.reserve(owner, price) if owner is not None else None
    changed = db.session.execute(
        sa.update(Generation)
        .where(Generation.id == generation_id, Generation.status.in_(RETRYABLE), Generation.job_id == generation.job_id)
        .values(status=Status.QUEUED, history=appended_history(generation.history, entry), attempts=0,
                job_id=queue.new_job_id(), heartbeat_at=utcnow(), credits=price, credits_month=month, refunded=False,
                **CLEARED_OUTCOME)
    ).rowcount
    if not changed:
        db.session.rollback()  # someone else retried it first: give the reservation back by not keeping it
        return False
    db.session.commit()
    # A blurred result is replaced, not kept twice.
    orphans.discard(services().stores, services().redis, old_storage, old_files)
    db.session.refresh(generation)
    enqueue([generation])
    return True


# --- what the reaper does ---------------------------------------------------------------------

def reap_stale_running(stale_before: datetime, limit: int = 500) -> tuple[int, int]:
    """Requeue (attempts left) or fail (none left) running rows whose worker stopped heartbeating; return the counts."""
    stale = (Generation.status == Status.RUNNING) & (
        Generation.heartbeat_at.is_(None) | (Generation.heartbeat_at < stale_before))
    rows = statements.read(sa.select(Generation.id, Generation.job_id, Generation.attempts,
                                        Generation.max_attempts).where(stale).limit(limit)).all()
    requeued = failed = 0
    for generation_id, job_id, attempts, max_attempts in rows:
        # The same staleness condition again: a row that heartbeat meanwhile is alive after all.
        if attempts < max_attempts:
            requeued += _requeue_where(_owned(generation_id, job_id) & stale, error=WORKER_STOPPED)
        else:
            failed += len(_end(_owned(generation_id, job_id) & stale, refund=sa.true(),
                               status=Status.FAILED, error=INTERRUPTED))
    return requeued, failed


def queued_without_heartbeat_since(since: datetime, after_id: int = 0,
                                    limit: int = 1000) -> list[tuple[int, str | None]]:
    """Queued rows (id, job id) not queued again since `since`, by id after `after_id`: jobs Redis may have lost."""
    return [(gid, job_id) for gid, job_id in statements.read(
        sa.select(Generation.id, Generation.job_id)
        .where(Generation.status == Status.QUEUED, Generation.id > after_id,
               Generation.heartbeat_at.is_(None) | (Generation.heartbeat_at < since))
        .order_by(Generation.id).limit(limit)
    )]


def requeue_lost(rows: list[tuple[int, str | None]]) -> int:
    """Enqueue again queued rows whose job is gone, each once: only the sweep that changes the job id enqueues."""
    return sum(_requeue_where(_owned(generation_id, job_id) & (Generation.status == Status.QUEUED))
               for generation_id, job_id in rows)


def _requeue_where(where: sa.ColumnElement[bool], **values: object) -> int:
    """Give the matching row a new job id and enqueue it; 0 if another sweep or a person got there first."""
    rows = statements.write(where, status=Status.QUEUED, job_id=queue.new_job_id(), heartbeat_at=utcnow(),
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
