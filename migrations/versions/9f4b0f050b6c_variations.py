"""Variations: a batch's comparison grid, each generation's cell in it, and users' wildcard lists.

Revision ID: 9f4b0f050b6c
Revises: a7c3e9f1b5d2
Create Date: 2026-12-08 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9f4b0f050b6c"
down_revision = "a7c3e9f1b5d2"
branch_labels = None
depends_on = None
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade():
    # Nullable columns without defaults: added in place on SQLite as on PostgreSQL, no table recreated.
    op.add_column("batches", sa.Column("grid", sa.JSON(), nullable=True))
    op.add_column("generations", sa.Column("cell", sa.JSON(), nullable=True))
    op.create_table(
        "wildcard_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", name="fk_wildcard_lists_owner_id_users",
                                                           ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("owner_id", "name", name="uq_wildcard_lists_owner_name"),
    )
    op.create_index("ix_wildcard_lists_owner_id", "wildcard_lists", ["owner_id"])


def downgrade():
    op.drop_index("ix_wildcard_lists_owner_id", table_name="wildcard_lists")
    op.drop_table("wildcard_lists")
    # SQLite drops a column by recreating the table: keep it AUTOINCREMENT (ids are never reused).
    with op.batch_alter_table("generations", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column("cell")
    with op.batch_alter_table("batches", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column("grid")
