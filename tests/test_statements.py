"""Lifecycle writes through a database connection the server drops: applied once, never lost, never twice."""

import psycopg
import pytest
import sqlalchemy as sa
from factories import advance, make_batch
from tests_support import rows

from app.extensions import db
from app.generations import lifecycle, statements
from app.models import Generation, Status


def running(app, generation_id):
    """Claim a row as its job would; return its job id."""
    advance(app, generation_id, Status.RUNNING)
    return rows(app, [generation_id])[0].job_id


def lost_connection() -> sa.exc.OperationalError:
    """What SQLAlchemy raises when the server closed the connection under a statement."""
    return sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"), connection_invalidated=True)


def terminate_session_connection(app) -> None:
    """Make the server drop the connection the session holds, as pg_terminate_backend or a failover would."""
    pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_write_on_a_connection_the_server_dropped_runs_on_a_new_one(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("needs PostgreSQL to terminate a connection")
    _, (generation_id,) = make_batch(app, "a cat")
    job_id = running(app, generation_id)
    with app.app_context():
        terminate_session_connection(app)  # the session holds a connection the server has closed
        assert lifecycle.fail(generation_id, job_id, "stopped")
        statements.release()
        assert db.session.get(Generation, generation_id).status == Status.FAILED


def test_a_commit_whose_answer_was_lost_is_found_and_not_applied_twice(app, monkeypatch):
    _, (generation_id,) = make_batch(app, "a cat")
    job_id = running(app, generation_id)
    real_commit = db.session.commit

    def commit_then_lose_the_answer():
        real_commit()
        raise lost_connection()

    with app.app_context():
        monkeypatch.setattr(db.session, "commit", commit_then_lose_the_answer)
        # Run twice, the guarded UPDATE would match nothing the second time and report a lost race:
        # the job would then delete the image the row now points to.
        assert lifecycle.finish(generation_id, job_id, False, file_name="ab/ab.png")
        monkeypatch.undo()
        statements.release()
        assert db.session.get(Generation, generation_id).status == Status.SUCCEEDED


def test_a_commit_that_never_landed_is_run_again(app, monkeypatch):
    _, (generation_id,) = make_batch(app, "a cat")
    job_id = running(app, generation_id)
    real_commit = db.session.commit
    calls = []

    def lose_the_first_commit():
        calls.append(1)
        if len(calls) == 1:
            db.session.rollback()  # what the server does with a transaction whose connection died
            raise lost_connection()
        real_commit()

    with app.app_context():
        monkeypatch.setattr(db.session, "commit", lose_the_first_commit)
        assert lifecycle.fail(generation_id, job_id, "stopped")
        monkeypatch.undo()
        statements.release()
        assert db.session.get(Generation, generation_id).status == Status.FAILED
    assert len(calls) == 2


def test_other_database_errors_are_not_retried(app, monkeypatch):
    _, (generation_id,) = make_batch(app, "a cat")
    with app.app_context():
        monkeypatch.setattr(db.session, "commit", lambda: (_ for _ in ()).throw(
            sa.exc.IntegrityError("UPDATE", {}, Exception("constraint"))))
        with pytest.raises(sa.exc.IntegrityError):
            lifecycle.fail(generation_id, None, "stopped")
