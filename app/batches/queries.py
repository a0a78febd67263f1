"""Reading a batch for its page: the generations in prompt order with their places in the queue."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.models import Generation, Status

_AHEAD = so.aliased(Generation)
# Built once: constructing this statement per poll cost more than running it. A place in line counts only
# the same owner's queued rows: users take turns, and nobody learns about other people's work.
_QUEUE_AHEAD = sa.case(
    (Generation.status == Status.QUEUED.value,
     sa.select(sa.func.count()).where(_AHEAD.owner_id.is_not_distinct_from(Generation.owner_id),
                                      _AHEAD.status == Status.QUEUED.value, _AHEAD.id < Generation.id)
     .scalar_subquery()),
    else_=None,
)


def generations_of(batch_id: int, visible: sa.ColumnElement[bool] | None = None) -> list[Generation]:
    """The batch's generations in prompt order with each queued one's place in line, in one query."""
    return list(db.session.scalars(
        sa.select(Generation).where(Generation.batch_id == batch_id, sa.true() if visible is None else visible)
        .order_by(Generation.position)
        .options(so.with_expression(Generation.queue_ahead, _QUEUE_AHEAD))
    ))
