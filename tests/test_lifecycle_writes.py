"""Lifecycle writes skip SQLAlchemy's session synchronisation; a row already loaded must still show the new state."""

from app.accounts.users import local_user
from app.extensions import db
from app.generations import lifecycle
from app.models import Generation


def test_a_row_loaded_before_claim_and_finish_shows_their_changes_in_the_same_session(app):
    with app.test_request_context():
        generation = lifecycle.create_batch(local_user(), ["a lighthouse"]).generations[0]
        gid, job_id = generation.id, generation.job_id
        loaded = db.session.get(Generation, gid)
        assert loaded.status == "queued"

        claimed = lifecycle.claim(gid, job_id)
        assert claimed is not None and claimed.prompt == "a lighthouse" and claimed.attempts == 1
        assert (loaded.status, loaded.started_at is not None, loaded.attempts) == ("running", True, 1)

        assert lifecycle.begin_attempt(gid, job_id, 2, None)
        assert loaded.attempts == 2

        assert lifecycle.finish(gid, job_id, False, file_name="ab/ab.png", error=None)
        assert (loaded.status, loaded.file_name) == ("succeeded", "ab/ab.png")
        assert db.session.get(Generation, gid) is loaded
