"""Which media store holds each generation's files ('local' or 's3').

Revision ID: 9a1c4e7f2b63
Revises: 9a1c4e7b2d60
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9a1c4e7f2b63"
down_revision = "9a1c4e7b2d60"
branch_labels = None
depends_on = None
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade():
    # Every existing file is on the local disk. A column with a constant default is added in place, on
    # SQLite as on PostgreSQL: no table is recreated.
    op.add_column("generations", sa.Column("storage", sa.String(8), nullable=False, server_default="local"))


def downgrade():
    # SQLite drops a column by recreating the table: keep it AUTOINCREMENT (ids are never reused).
    with op.batch_alter_table("generations", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column("storage")
