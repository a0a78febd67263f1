"""What the next home form starts from: the options, images per prompt and seed of the user's last batch from the
form (never its prompts), kept per user in the database so they follow the user to every browser."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.generations.seeds import random_seed
from app.models import LastOptions, User, utcnow
from app.prompts.forms import BATCH_SETTINGS, PromptForm
from app.providers.options import OPTION_NAMES

# Every option (a new one is remembered too), the batch's settings, and whether the seed is locked.
REMEMBERED = (*OPTION_NAMES, *BATCH_SETTINGS, "seed_locked")


def remember(user: User, form: PromptForm) -> None:
    """Keep this form's options as the user's next starting point, in the current transaction (the caller commits)."""
    values = {name: form[name].data for name in REMEMBERED}
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # One statement, so two batches submitted at once by one user cannot both try to create the row.
    statement = insert(LastOptions).values(user_id=user.id, options=values, updated_at=utcnow())
    db.session.execute(statement.on_conflict_do_update(
        index_elements=[LastOptions.user_id],
        set_={"options": statement.excluded.options, "updated_at": statement.excluded.updated_at}))


def recall(user: User) -> dict[str, object]:
    """The user's last options as the form's data; with no seed kept, a fresh random one, unlocked."""
    row = db.session.get(LastOptions, user.id) if user.is_authenticated else None
    kept = row.options if row is not None and isinstance(row.options, dict) else {}
    values = {name: kept[name] for name in REMEMBERED if name in kept}
    if not isinstance(values.get("seed"), int) or isinstance(values.get("seed"), bool):
        values.update(seed=random_seed(), seed_locked=False)
    return values
