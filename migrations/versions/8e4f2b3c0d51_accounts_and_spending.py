"""Accounts, owners of batches and generations, and monthly spending.

Revision ID: 8e4f2b3c0d51
Revises: 7d3e1a2b9c40
Create Date: 2026-12-01 22:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "8e4f2b3c0d51"
down_revision = "7d3e1a2b9c40"
branch_labels = None
depends_on = None
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("monthly_credits", sa.Float(), nullable=True),
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "monthly_spend",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("credits", sa.Float(), nullable=False, server_default="0"),
    )
    # Existing rows stay without an owner until the first admin is created, who then takes them.
    # On SQLite adding a foreign key recreates the table: keep it AUTOINCREMENT (ids are never reused).
    with op.batch_alter_table("batches", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_batches_owner_id_users", "users", ["owner_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index("ix_batches_owner_id", ["owner_id"])
    with op.batch_alter_table("generations", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("credits", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("credits_month", sa.String(7), nullable=True))
        batch_op.add_column(sa.Column("refunded", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key("fk_generations_owner_id_users", "users", ["owner_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_generations_owner_created_at_id", ["owner_id", "created_at", "id"])
        batch_op.create_index("ix_generations_owner_status_id", ["owner_id", "status", "id"])


def downgrade():
    with op.batch_alter_table("generations", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index("ix_generations_owner_status_id")
        batch_op.drop_index("ix_generations_owner_created_at_id")
        batch_op.drop_constraint("fk_generations_owner_id_users", type_="foreignkey")
        for column in ("refunded", "credits_month", "credits", "owner_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("batches", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_index("ix_batches_owner_id")
        batch_op.drop_constraint("fk_batches_owner_id_users", type_="foreignkey")
        batch_op.drop_column("owner_id")
    op.drop_table("monthly_spend")
    op.drop_table("users")
