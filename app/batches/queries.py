"""Reading a batch for its page: the generations in prompt order with their places in the queue."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.extensions import db
from app.models import Batch, Generation, Status

_AHEAD = so.aliased(Generation)
# Built once: constructing this statement per poll cost more than running it. A place in line counts only
# the same owner's queued rows: users take turns, and nobody learns about other people's work.
_QUEUE_AHEAD = sa.case(
    (Generation.status == Status.QUEUED,
     sa.select(sa.func.count()).where(_AHEAD.owner_id.is_not_distinct_from(Generation.owner_id),
                                      _AHEAD.status == Status.QUEUED, _AHEAD.id < Generation.id)
     .scalar_subquery()),
    else_=None,
)
# A poll needs only what a card's token is made of, and what the batch's credits line adds up: whole rows cost
# most of a poll's time with 150 cards.
_CARD_STATES = sa.select(Generation.id, Generation.status, Generation.attempts, _QUEUE_AHEAD.label("queue_ahead"),
                         Generation.credits, Generation.refunded)


def generations_of(batch_id: int, visible: sa.ColumnElement[bool] | None = None) -> list[Generation]:
    """The batch's generations in prompt order with each queued one's place in line, in one query."""
    return _with_queue_places(Generation.batch_id == batch_id, visible)


def generations_by_id(ids: Collection[int]) -> list[Generation]:
    """These generations (a poll's changed cards) in prompt order, with their places in line, in one query."""
    return _with_queue_places(Generation.id.in_(ids), None) if ids else []


def card_states(batch_id: int, visible: sa.ColumnElement[bool]) -> list[sa.Row]:
    """The batch's (id, status, attempts, queue_ahead, credits, refunded) rows in prompt order, that the viewer may
    see: one query."""
    # Plain columns, so no ORM layer; and in autocommit, outside the session's transaction: one SELECT is the
    # whole conversation with the database, without a BEGIN and a ROLLBACK around it.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return list(connection.execute(
            _CARD_STATES.where(Generation.batch_id == batch_id, visible).order_by(Generation.position)).all())


def _with_queue_places(where: sa.ColumnElement[bool], visible: sa.ColumnElement[bool] | None) -> list[Generation]:
    # The batch comes in the same statement: a card names its prompt and image by the batch's images per prompt.
    return list(db.session.scalars(
        sa.select(Generation).where(where, sa.true() if visible is None else visible)
        .order_by(Generation.position)
        .options(so.with_expression(Generation.queue_ahead, _QUEUE_AHEAD), so.joinedload(Generation.batch))
    ))


def batch_has_grid(batch_id: int) -> bool:
    """True when the batch is a comparison grid (its page offers the grid's PNG)."""
    return db.session.scalar(sa.select(Batch.grid.is_not(None)).where(Batch.id == batch_id)) or False
