"""Images made from images: each row's operation, its source image, the operation's fields, a painted mask and an
async operation's result id.

Revision ID: a7c3e9f1b5d2
Revises: 09b73cebfaf9
Create Date: 2026-12-08 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "a7c3e9f1b5d2"
down_revision = "09b73cebfaf9"
branch_labels = None
depends_on = None
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade():
    # Constant defaults and nullable columns: added in place on SQLite as on PostgreSQL.
    op.add_column("generations", sa.Column("operation", sa.String(40), nullable=False, server_default="generate"))
    op.add_column("generations", sa.Column("operation_params", sa.JSON(), nullable=True))
    op.add_column("generations", sa.Column("mask_name", sa.String(128), nullable=True))
    op.add_column("generations", sa.Column("result_id", sa.String(128), nullable=True))
    # A foreign key on an existing table: SQLite needs the table recreated (kept AUTOINCREMENT: ids are never reused).
    with op.batch_alter_table("generations", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_generations_source_id_generations", "generations", ["source_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_generations_source_id", ["source_id"])
        batch_op.create_index("ix_generations_owner_operation_created_at_id",
                              ["owner_id", "operation", "created_at", "id"])


def downgrade():
    with op.batch_alter_table("generations", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index("ix_generations_owner_operation_created_at_id")
        batch_op.drop_index("ix_generations_source_id")
        batch_op.drop_constraint("fk_generations_source_id_generations", type_="foreignkey")
        batch_op.drop_column("source_id")
        batch_op.drop_column("result_id")
        batch_op.drop_column("mask_name")
        batch_op.drop_column("operation_params")
        batch_op.drop_column("operation")
