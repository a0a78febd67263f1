"""Accounts can be deleted: a heartbeat column marks one being deleted, and SQLite never reuses a user's id.

Revision ID: e5a7c9b1d3f4
Revises: 76872d75e8f9
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e5a7c9b1d3f4"
down_revision = "76872d75e8f9"
branch_labels = None
depends_on = None

# Without AUTOINCREMENT SQLite hands out max(id) + 1: a deleted newest account would give its id to the next one,
# and password links or copied cookies made for the old account would name the new one.
COLUMN = "deletion_heartbeat_at"


def _refuse_cascading_drop(bind):
    # Recreating `users` drops it; with foreign keys enforced SQLite would first delete every token that points
    # at it. The app never turns them on; switch them off in case a tool did, and stop rather than lose rows.
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("turn SQLite foreign keys off (PRAGMA foreign_keys=OFF) before this migration")


def _batch(autoincrement):
    """A batch on `users`: on SQLite the table is copied into a new one (rows and indexes kept)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return op.batch_alter_table("users")
    _refuse_cascading_drop(bind)
    return op.batch_alter_table("users", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement})


def upgrade():
    with _batch(True) as batch_op:
        batch_op.add_column(sa.Column(COLUMN, sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with _batch(False) as batch_op:
        batch_op.drop_column(COLUMN)
