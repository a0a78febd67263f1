"""A user's last options from the home form, which their next form opens with (in every browser).

Revision ID: e5a7c9b1d3f4
Revises: b3d5f7a9c1e2
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e5a7c9b1d3f4"
down_revision = "b3d5f7a9c1e2"
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
