"""search and filter indexes

Revision ID: 5b7c2e9d1f30
Revises: 48af41f6b4ec
Create Date: 2026-11-24 01:35:00

"""
from alembic import op

revision = '5b7c2e9d1f30'
down_revision = '48af41f6b4ec'
branch_labels = None
depends_on = None


def upgrade():
    # Status filters walk this instead of the whole (created_at, id) index when a status is rare.
    op.create_index('ix_generations_status_created_at_id', 'generations', ['status', 'created_at', 'id'])
    if op.get_bind().dialect.name == 'postgresql':
        # Prompt search is ILIKE '%word%': without trigrams that is a sequential scan of every prompt
        # (175 ms at 100,000 images, see benchmarks/gallery_pages.py); with them about 1 ms.
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_generations_prompt_trgm ON generations USING gin (prompt gin_trgm_ops)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_generations_prompt_trgm')
    op.drop_index('ix_generations_status_created_at_id', table_name='generations')
