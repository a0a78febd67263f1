"""An index for the generate page's time-left estimate: a model's latest successes by when they finished.

Revision ID: b3d5f7a9c1e2
Revises: 9a1c4e7f2b63
Create Date: 2026-12-02 05:40:00
"""

from alembic import op

revision = "b3d5f7a9c1e2"
down_revision = "9a1c4e7f2b63"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_generations_model_status_finished_at", "generations", ["model", "status", "finished_at"])


def downgrade():
    op.drop_index("ix_generations_model_status_finished_at", table_name="generations")
