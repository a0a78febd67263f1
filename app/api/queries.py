"""Reading batches for the API's list: one keyset page, then every batch's counts in one grouped query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.batches.progress import Progress
from app.extensions import db
from app.gallery.pages import Cursor
from app.models import Batch, Generation, Status


@dataclass(frozen=True)
class BatchRow:
    """A batch with its counts and when its last generation finished."""

    batch: Batch
    progress: Progress
    finished_at: datetime | None


@dataclass(frozen=True)
class BatchPage:
    """One page of batches, newest first, and the cursor of the next."""

    items: list[BatchRow]
    next_cursor: Cursor | None


def _counts(batch_ids: list[int]) -> dict[int, tuple[dict[str, int], datetime | None]]:
    """Per batch: how many generations have each status, and the latest finish."""
    rows = db.session.execute(
        sa.select(Generation.batch_id, Generation.status, sa.func.count(), sa.func.max(Generation.finished_at))
        .where(Generation.batch_id.in_(batch_ids)).group_by(Generation.batch_id, Generation.status)
    ).all()
    counts: dict[int, tuple[dict[str, int], datetime | None]] = {}
    for batch_id, status, count, finished in rows:
        by_status, latest = counts.setdefault(batch_id, ({}, None))
        by_status[status] = count
        if finished is not None and (latest is None or finished > latest):
            counts[batch_id] = (by_status, finished)
    return counts


def _progress(by_status: dict[str, int]) -> Progress:
    total = sum(by_status.values())
    pending = by_status.get(Status.QUEUED, 0) + by_status.get(Status.RUNNING, 0)
    succeeded = by_status.get(Status.SUCCEEDED, 0)
    return Progress(total=total, succeeded=succeeded, unsuccessful=total - pending - succeeded, pending=pending)


def batch_page(cursor: Cursor | None, size: int, visible: sa.ColumnElement[bool]) -> BatchPage:
    """The batches `visible` allows, newest first, after the cursor."""
    query = sa.select(Batch).where(visible)
    if cursor is not None:
        query = query.where(sa.tuple_(Batch.created_at, Batch.id) < (cursor.created_at, cursor.id))
    batches = list(db.session.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(size + 1)))
    more = len(batches) > size
    batches = batches[:size]
    counts = _counts([b.id for b in batches]) if batches else {}
    items = [BatchRow(b, _progress(counts.get(b.id, ({}, None))[0]), counts.get(b.id, ({}, None))[1])
             for b in batches]
    return BatchPage(items=items, next_cursor=Cursor.after(batches[-1]) if more else None)
