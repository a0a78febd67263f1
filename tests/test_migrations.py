"""The migrations on SQLite (local runs): ids are never reused, and recreating the tables keeps every row."""

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app.extensions import db
from app.models import Batch, Generation

BEFORE_AUTOINCREMENT = "5b7c2e9d1f30"


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
        kept = add_batch("a", "b")
        ids = [g.id for g in kept.generations]
        indexes = {index["name"] for index in sa.inspect(db.engine).get_indexes("generations")}
        db.session.remove()
        upgrade()
        assert all("AUTOINCREMENT" in sql for sql in table_sql())
        rows = db.session.scalars(sa.select(Generation).order_by(Generation.id)).all()
        assert [(g.id, g.prompt, g.history) for g in rows] == [(ids[0], "a", [{"status": "failed"}]),
                                                             (ids[1], "b", [{"status": "failed"}])]
        inspector = sa.inspect(db.engine)
        assert {index["name"] for index in inspector.get_indexes("generations")} == indexes
        assert [u["name"] for u in inspector.get_unique_constraints("generations")] == ["uq_generations_batch_position"]
        assert inspector.get_foreign_keys("generations")[0]["referred_table"] == "batches"
        db.session.remove()
        downgrade(revision=BEFORE_AUTOINCREMENT)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Generation)) == 2
        assert not any("AUTOINCREMENT" in sql for sql in table_sql())
        db.session.remove()
        upgrade()  # the fixture's clean-up expects the current schema
