"""A user's last options from the home form, which their next form opens with (in every browser).

Revision ID: f2b4d6a8c0e1
Revises: d4e6f8a0b2c3
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f2b4d6a8c0e1"
down_revision = "d4e6f8a0b2c3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "last_options",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", name="fk_last_options_user_id_users",
                                                          ondelete="CASCADE"), primary_key=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("last_options")
