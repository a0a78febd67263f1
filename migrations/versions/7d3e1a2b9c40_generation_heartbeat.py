"""Heartbeat of a generation, for the reaper.

Revision ID: 7d3e1a2b9c40
Revises: c8279821ab11
Create Date: 2026-12-01 22:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7d3e1a2b9c40"
down_revision = "c8279821ab11"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("generations") as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_generations_status_heartbeat_at", ["status", "heartbeat_at"])


def downgrade():
    with op.batch_alter_table("generations") as batch_op:
        batch_op.drop_index("ix_generations_status_heartbeat_at")
        batch_op.drop_column("heartbeat_at")
