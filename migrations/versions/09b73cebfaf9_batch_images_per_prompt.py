"""How many images of each prompt a batch holds, so a card can say "prompt 2, image 3" rather than "prompt 6".

Revision ID: 09b73cebfaf9
Revises: f2b4d6a8c0e1
Create Date: 2026-12-04 19:40:00
"""

import itertools

import sqlalchemy as sa
from alembic import op

revision = "09b73cebfaf9"
down_revision = "f2b4d6a8c0e1"
branch_labels = None
depends_on = None
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}
MOST_IMAGES_PER_PROMPT = 4  # what the form and the API allowed when the batches before this were made


def upgrade():
    # A constant default: added in place on SQLite as on PostgreSQL, no table recreated.
    op.add_column("batches", sa.Column("images_per_prompt", sa.Integer(), nullable=False, server_default="1"))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT batch_id, position, prompt FROM generations ORDER BY batch_id, position")).yield_per(1000)
    for batch_id, images in itertools.groupby(rows, key=lambda row: row.batch_id):
        per_prompt = _images_per_prompt([(row.position, row.prompt) for row in images])
        if per_prompt > 1:
            connection.execute(sa.text("UPDATE batches SET images_per_prompt = :n WHERE id = :id"),
                               {"n": per_prompt, "id": batch_id})


def _images_per_prompt(images: list[tuple[int, str]]) -> int:
    """The most images per prompt the batch's positions allow: they divide its length, and each run of that many
    positions holds one prompt (rows deleted since leave gaps, which break neither)."""
    length = max(position for position, _ in images) + 1
    for per_prompt in range(MOST_IMAGES_PER_PROMPT, 1, -1):
        runs = {}
        for position, prompt in images:
            runs.setdefault(position // per_prompt, set()).add(prompt)
        if length % per_prompt == 0 and all(len(prompts) == 1 for prompts in runs.values()):
            return per_prompt
    return 1


def downgrade():
    # SQLite drops a column by recreating the table: keep it AUTOINCREMENT (ids are never reused).
    with op.batch_alter_table("batches", table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column("images_per_prompt")
