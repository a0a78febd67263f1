"""The migrations on SQLite (local runs): ids are never reused, and recreating the tables keeps every row."""

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app.extensions import db
from app.models import Batch, Generation

BEFORE_AUTOINCREMENT = "5b7c2e9d1f30"
AUTOINCREMENT = "c8279821ab11"


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    """An app on a SQLite file of its own, whatever database the rest of the suite uses."""
    return make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'ids.db'}")


def add_batch(*prompts):
    batch = Batch(generations=[Generation(position=i, prompt=p, provider="demo", history=[{"status": "failed"}])
                               for i, p in enumerate(prompts)])
    db.session.add(batch)
    db.session.commit()
    return batch


def add_old_rows():
    """Rows as the schema before AUTOINCREMENT stored them (the models have moved on since)."""
    db.session.execute(sa.text("INSERT INTO batches (id, created_at) VALUES (1, '2026-11-01 00:00:00')"))
    for position, prompt in enumerate(("a", "b")):
        db.session.execute(sa.text(
            "INSERT INTO generations (batch_id, position, prompt, model, aspect_ratio, output_format, attempts, "
            "max_attempts, provider, status, history, created_at) VALUES (1, :position, :prompt, 'core', '1:1', "
            "'png', 0, 1, 'demo', 'queued', '[{\"status\": \"failed\"}]', '2026-11-01 00:00:00')"),
            {"position": position, "prompt": prompt})
    db.session.commit()
    return list(db.session.scalars(sa.text("SELECT id FROM generations ORDER BY id")))


def table_sql():
    return list(db.session.scalars(sa.text("SELECT sql FROM sqlite_master WHERE name IN ('batches', 'generations')")))


def test_a_deleted_newest_image_does_not_give_its_id_to_the_next_one(sqlite_app):
    with sqlite_app.app_context():
        upgrade()
        add_batch("first")
        newest = add_batch("second")
        batch_id, generation_id = newest.id, newest.generations[0].id
        db.session.delete(newest)
        db.session.commit()
        again = add_batch("third")
        assert again.id > batch_id and again.generations[0].id > generation_id


def test_the_upgrade_keeps_rows_and_indexes_and_the_downgrade_undoes_it(sqlite_app):
    with sqlite_app.app_context():
        upgrade(revision=BEFORE_AUTOINCREMENT)
        ids = add_old_rows()
        indexes = {index["name"] for index in sa.inspect(db.engine).get_indexes("generations")}
        db.session.remove()
        upgrade(revision=AUTOINCREMENT)
        assert all("AUTOINCREMENT" in sql for sql in table_sql())
        rows = db.session.execute(sa.text("SELECT id, prompt, history FROM generations ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(ids[0], "a", '[{"status": "failed"}]'),
                                            (ids[1], "b", '[{"status": "failed"}]')]
        inspector = sa.inspect(db.engine)
        assert {index["name"] for index in inspector.get_indexes("generations")} == indexes
        assert [u["name"] for u in inspector.get_unique_constraints("generations")] == ["uq_generations_batch_position"]
        assert inspector.get_foreign_keys("generations")[0]["referred_table"] == "batches"
        db.session.remove()
        downgrade(revision=BEFORE_AUTOINCREMENT)
        assert db.session.scalar(sa.text("SELECT count(*) FROM generations")) == 2
        assert not any("AUTOINCREMENT" in sql for sql in table_sql())
        db.session.remove()
        upgrade()  # the fixture's clean-up expects the current schema


BEFORE_STORAGE = "8e4f2b3c0d51"


def test_existing_images_are_local_after_the_storage_column_arrives_and_ids_stay_unreused(sqlite_app):
    with sqlite_app.app_context():
        upgrade(revision=BEFORE_STORAGE)
        db.session.execute(sa.text("INSERT INTO batches (id, created_at) VALUES (1, '2026-11-01 00:00:00')"))
        db.session.execute(sa.text(
            "INSERT INTO generations (batch_id, position, prompt, model, aspect_ratio, output_format, attempts, "
            "max_attempts, provider, status, history, created_at, file_name, credits, refunded) VALUES (1, 0, 'a', "
            "'core', '1:1', 'png', 0, 1, 'demo', 'succeeded', '[]', '2026-11-01 00:00:00', 'ab/ab.png', 0, 0)"))
        db.session.commit()
        db.session.remove()
        upgrade()
        assert db.session.scalar(sa.text("SELECT storage FROM generations")) == "local"
        db.session.remove()
        downgrade(revision=BEFORE_STORAGE)
        assert all("AUTOINCREMENT" in sql for sql in table_sql())
        assert db.session.scalar(sa.text("SELECT file_name FROM generations")) == "ab/ab.png"
        db.session.remove()
        upgrade()


def test_the_migrations_build_exactly_the_schema_the_models_declare(app):
    """A column added to a model (a new option, say) without its migration fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        if connection.dialect.name == "sqlite":  # SQLite keeps affinities, not types: a FLOAT reads back as REAL
            differences = [d for d in differences if not (isinstance(d, list) and d[0][0] == "modify_type")]
    # The search's trigram index exists only on PostgreSQL, made by its migration alone (see Generation).
    assert [d for d in differences if d[0] != "remove_index" or d[1].name != "ix_generations_prompt_trgm"] == []


BEFORE_DELETION = "b3d5f7a9c1e2"


def users_sql():
    return db.session.scalar(sa.text("SELECT sql FROM sqlite_master WHERE name = 'users'"))


def test_accounts_keep_their_rows_through_the_deletion_migration_and_a_deleted_id_is_never_reused(sqlite_app):
    from app.accounts.users import create_user
    from app.models import User

    with sqlite_app.app_context():
        upgrade(revision=BEFORE_DELETION)
        db.session.execute(sa.text("INSERT INTO users (id, email, is_admin, disabled, session_version, created_at) "
                                   "VALUES (1, 'ann@example.com', 0, 0, 3, '2026-11-01 00:00:00')"))
        db.session.execute(sa.text("INSERT INTO api_tokens (user_id, name, prefix, secret_hash, created_at) "
                                   "VALUES (1, 'script', 'igk_abc', 'hash', '2026-11-01 00:00:00')"))
        db.session.commit()
        db.session.remove()
        upgrade()
        assert "AUTOINCREMENT" in users_sql()
        assert db.session.execute(sa.text("SELECT id, email, session_version, deletion_heartbeat_at FROM users")
                                  ).all() == [(1, "ann@example.com", 3, None)]
        assert db.session.scalar(sa.text("SELECT user_id FROM api_tokens")) == 1
        newest = create_user("bob@example.com", password="a long password")
        bob_id = newest.id
        db.session.execute(sa.delete(User).where(User.id == bob_id))
        db.session.commit()
        assert create_user("carol@example.com", password="a long password").id > bob_id
        db.session.remove()
        downgrade(revision=BEFORE_DELETION)
        assert "AUTOINCREMENT" not in users_sql()
        assert db.session.scalar(sa.text("SELECT count(*) FROM users")) == 2
        db.session.remove()
        upgrade()


BEFORE_IMAGES_PER_PROMPT = "f2b4d6a8c0e1"


def add_generation(batch_id, position, prompt):
    db.session.execute(sa.text(
        "INSERT INTO generations (batch_id, position, prompt, model, aspect_ratio, output_format, attempts, "
        "max_attempts, provider, status, history, created_at, credits, refunded) VALUES (:batch, :position, "
        ":prompt, 'core', '1:1', 'png', 0, 1, 'demo', 'succeeded', '[]', '2026-11-01 00:00:00', 0, false)"),
        {"batch": batch_id, "position": position, "prompt": prompt})


@pytest.mark.parametrize(("prompts", "expected"), [
    (["a", "a", "a", "b", "b", "b"], 3),
    (["a", "a", None, "b", "b", "b"], 3),  # a deleted image leaves a gap
    (["a", "b", "c"], 1),
    (["a", "a", "b", "b", "c", "c", "d", "d"], 2),
    (["a", "a", "a", "a"], 4),
    (["a", "a", "a", "b"], 1),
])
def test_batches_made_before_learn_their_images_per_prompt_from_their_rows(app, prompts, expected):
    """On the suite's database (PostgreSQL when DATABASE_URL names one), down to the revision before and back."""
    with app.app_context():
        downgrade(revision=BEFORE_IMAGES_PER_PROMPT)
        db.session.execute(sa.text("INSERT INTO batches (id, created_at) VALUES (7, '2026-11-01 00:00:00')"))
        for position, prompt in enumerate(prompts):
            if prompt is not None:
                add_generation(7, position, prompt)
        db.session.commit()
        db.session.remove()
        upgrade()
        assert db.session.scalar(sa.text("SELECT images_per_prompt FROM batches WHERE id = 7")) == expected
