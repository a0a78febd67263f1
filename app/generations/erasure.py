"""Deleting an account and everything it made, in the background: marked at once, then files before rows, in chunks.

The row is the state. `users.deletion_heartbeat_at` set means the account is being deleted; it is disabled in the
same commit, so sign-in, its sessions and its tokens are refused from then on. The job (taking only the user's id)
cancels what still runs, then repeatedly deletes a chunk of images' files and after them their rows, beating on the
user row; last go the account's other rows and the user row itself. A job that dies (a killed worker) leaves the
mark, and the reaper queues the job again once the beat is older than REAPER_STALE_SECONDS. Every step may run
twice, or in two jobs at once: a file already gone and a row already deleted are fine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from app.extensions import db
from app.generations import lifecycle, queue, spending
from app.media_store import orphans
from app.models import FINAL_STATUSES, Batch, Generation, MonthlySpend, User, utcnow
from app.services import QueueUnavailable, services

log = logging.getLogger(__name__)


@dataclass
class Erased:
    """What one run of the deletion removed."""

    images: int = 0
    files: int = 0
    waiting: int = 0  # files whose store was down: deleted by the reaper's sweep once it answers
    done: bool = False  # the account's row is gone


def request(user: User, queue_job: bool = True) -> None:
    """Mark the account as being deleted (signed out everywhere at once), cancel what it has running, queue the job."""
    if not user.being_deleted:
        user.disabled = True
        user.session_version += 1  # every session cookie of the account names the old version
    user.deletion_heartbeat_at = utcnow()
    db.session.commit()
    lifecycle.cancel(Generation.owner_id == user.id)
    if queue_job:
        enqueue(user.id)


def enqueue(user_id: int) -> bool:
    """Queue the deletion job; with Redis down the mark stays, and the reaper queues it once the beat is stale."""
    try:
        redis = services().require_redis()
        job_id = queue.enqueue_account_deletion(redis, current_app.config["RQ_QUEUE_NAME"], user_id)
    except (RedisError, QueueUnavailable, OSError):
        log.exception("could not queue the deletion of account %s; the reaper will", user_id)
        return False
    log.info("deletion of account %s queued as job %s", user_id, job_id)
    return True


def run(user_id: int, chunk: int | None = None) -> Erased:
    """Delete what is left of an account marked for deletion; nothing if it is not marked (or gone already)."""
    size = chunk or current_app.config["ACCOUNT_DELETION_CHUNK"]
    erased = Erased()
    while not erased.done and _beat(user_id):
        # Every round: a retry an admin started, or a submission that was in flight at the mark, ends too.
        lifecycle.cancel(Generation.owner_id == user_id)
        rows = _final_images(user_id, size)
        if not rows:
            erased.done = _delete_account_rows(user_id)
            continue
        files = [(row.storage, name) for row in rows
                 for name in (row.file_name, row.thumb_name, row.mask_name) if name]
        # Files first: a crash between the two leaves rows that name files already gone, never files without rows.
        erased.waiting += orphans.discard_many(services().stores, services().redis, files)
        erased.files += len(files)
        erased.images += _delete_images(rows)
    return erased


def resume_stalled(stale_before: datetime) -> int:
    """Queue again the deletions whose job stopped beating (its worker died, or Redis lost it); return how many."""
    stalled = User.deletion_heartbeat_at < stale_before
    user_ids = list(db.session.scalars(sa.select(User.id).where(stalled)))
    resumed = 0
    for user_id in user_ids:
        # The same condition again: only the sweep that moves the beat queues the job.
        taken = db.session.execute(sa.update(User).where(User.id == user_id, stalled)
                                   .values(deletion_heartbeat_at=utcnow())).rowcount
        db.session.commit()
        if taken and enqueue(user_id):
            log.warning("deletion of account %s had stopped; queued again", user_id)
            resumed += 1
    return resumed


def image_count(user_id: int) -> int:
    """How many images (rows with a stored file) an account has: what its deletion will remove."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Generation).where(
        Generation.owner_id == user_id, Generation.file_name.is_not(None))) or 0


def _beat(user_id: int) -> bool:
    """Note the deletion's progress; False if the account is not being deleted (or is gone)."""
    beating = db.session.execute(sa.update(User).where(User.id == user_id, User.deletion_heartbeat_at.is_not(None))
                                 .values(deletion_heartbeat_at=utcnow())).rowcount
    db.session.commit()
    return bool(beating)


def _final_images(user_id: int, size: int) -> Sequence[sa.Row]:
    """The next `size` finished generations of the account, with where their files are."""
    return db.session.execute(
        sa.select(Generation.id, Generation.batch_id, Generation.storage, Generation.file_name, Generation.thumb_name,
                  Generation.mask_name)
        .where(Generation.owner_id == user_id, Generation.status.in_(FINAL_STATUSES))
        .order_by(Generation.id).limit(size)).all()


def _delete_images(rows: Sequence[sa.Row]) -> int:
    """Delete these rows (any that was retried meanwhile stays, for the next round) and their emptied batches."""
    deleted = db.session.execute(sa.delete(Generation).where(
        Generation.id.in_([row.id for row in rows]), Generation.status.in_(FINAL_STATUSES))).rowcount
    emptied = ~sa.exists().where(Generation.batch_id == Batch.id)
    db.session.execute(sa.delete(Batch).where(Batch.id.in_({row.batch_id for row in rows}), emptied))
    db.session.commit()
    return deleted


def _delete_account_rows(user_id: int) -> bool:
    """Once no image is left: every other row of the account, then the account, in one commit. False if one came."""
    if db.session.scalar(sa.select(sa.exists().where(Generation.owner_id == user_id))):
        db.session.rollback()
        return False
    for statement in _rows_pointing_at(user_id):
        db.session.execute(statement)
    # The account's own spend goes; the installation's total keeps what was spent (it is the operator's bill).
    db.session.execute(sa.delete(MonthlySpend).where(MonthlySpend.scope == spending.user_scope(user_id)))
    db.session.execute(sa.delete(User).where(User.id == user_id))
    db.session.commit()
    log.warning("account %s deleted", user_id)
    try:
        queue.forget_queue(services().require_redis(), current_app.config["RQ_QUEUE_NAME"], user_id)
    except (RedisError, QueueUnavailable, OSError):
        log.warning("the queue of deleted account %s stays in Redis (empty)", user_id)
    return True


def _rows_pointing_at(user_id: int) -> Iterator[sa.Delete]:
    """A DELETE for every table with a foreign key to users (batches, tokens, …): SQLite enforces no cascades."""
    for table in reversed(db.metadata.sorted_tables):
        for key in table.foreign_keys:
            if key.column.table.name == User.__tablename__:
                yield sa.delete(table).where(key.parent == user_id)
