"""The "Recent prompts" picker: a person's own last distinct prompts, newest first."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.models import Generation

RECENT_LIMIT = 15
# Only this many of the newest rows are grouped, so the query stays an index range however long the history.
SCANNED_ROWS = 500


@dataclass(frozen=True)
class RecentPrompt:
    """One distinct prompt and the newest image made from it (what /?reuse= takes)."""

    generation_id: int
    prompt: str


def recent_prompts(owner_id: int, limit: int = RECENT_LIMIT) -> list[RecentPrompt]:
    """The owner's last `limit` distinct prompts, newest first; only their own, whoever they are (admins too).

    Uploads and the edits that take no prompt have none, and are left out.
    """
    newest = (sa.select(Generation.id, Generation.prompt)
              .where(Generation.owner_id == owner_id, Generation.prompt != "")
              .order_by(Generation.created_at.desc(), Generation.id.desc()).limit(SCANNED_ROWS).subquery())
    latest = sa.func.max(newest.c.id)
    rows = db.session.execute(sa.select(latest, newest.c.prompt).group_by(newest.c.prompt)
                              .order_by(latest.desc()).limit(limit))
    return [RecentPrompt(generation_id, prompt) for generation_id, prompt in rows]
