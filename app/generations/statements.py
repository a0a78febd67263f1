"""The lifecycle's statements, run so that a database connection dropped on the way (a failover, a restart,
an administrator's pg_terminate_backend) neither loses a status change nor applies one twice.

The engine's pre-ping replaces a connection that died while idle in the pool; these cover the rest: a connection
that dies while the session holds it, between a statement and its commit, or with the commit's answer in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from app.extensions import db
from app.models import Generation

log = logging.getLogger(__name__)
# Every lifecycle write stamps one of these with the time it runs (to the microsecond): finding the stamp after
# a commit whose answer was lost tells that the commit landed.
STAMPS = ("finished_at", "heartbeat_at")
# Each write commits at once, which expires every loaded object anyway: matching the session's objects to the
# UPDATE first (SQLAlchemy's synchronize_session) would only cost CPU.
COMMITTED_AT_ONCE = {"synchronize_session": False}


def release() -> None:
    """End the session's transaction and give back its connection; one the server dropped has nothing to undo."""
    try:
        db.session.rollback()
    except sa.exc.DBAPIError as exc:
        # Rolling back on a connection the server closed raises, once; the session then forgets it.
        if not exc.connection_invalidated:
            raise
        db.session.rollback()


def read(statement: sa.Executable) -> sa.Result:
    """Run a query; if the server had dropped the session's connection, run it again on a new one."""
    try:
        return db.session.execute(statement)
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost (%s); reading again on a new one", exc.orig)
        release()
        return db.session.execute(statement)


def write(where: sa.ColumnElement[bool], returning: Sequence[sa.ColumnElement] = (Generation.id,),
          before_commit: Callable[[list[sa.Row]], None] | None = None, **values: object) -> list[sa.Row]:
    """UPDATE the rows matching `where` and commit, exactly once even if the connection drops; return their rows.

    `before_commit(rows)` runs in the same transaction (a refund of the rows' credits, say), so it lands with it.
    """
    statement = sa.update(Generation).where(where).values(**values).returning(*returning)

    def run() -> list[sa.Row]:
        rows = db.session.execute(statement, execution_options=COMMITTED_AT_ONCE).all()
        if before_commit is not None and rows:
            before_commit(rows)
        db.session.commit()
        return rows

    try:
        return run()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost (%s) while writing; checking whether the write landed", exc.orig)
    release()
    # The connection is gone, so its transaction has ended one way or the other: committed whole (its stamp is
    # there) or not at all (and the guarded UPDATE can simply run again).
    landed = read(sa.select(*returning).where(_stamp(values))).all()
    if landed:
        release()
        return landed
    return run()


def _stamp(values: dict[str, object]) -> sa.ColumnElement[bool]:
    """The rows carrying the timestamp this write sets."""
    for name in STAMPS:
        if values.get(name) is not None:
            return getattr(Generation, name) == values[name]
    raise ValueError(f"a lifecycle write must set one of {', '.join(STAMPS)}")
