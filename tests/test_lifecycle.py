"""Every status change of a generation (app/generations/lifecycle.py): create and enqueue, claim, attempts,
heartbeats, finish, fail, requeue, cancel, retry, and what the reaper does; each guarded by the status it starts
from and by the job the row waits for."""

import pytest
import sqlalchemy as sa
from conftest import LOCK_KEY, drain, flush_keeping_lock
from factories import advance, make_batch, make_user
from rq.exceptions import NoSuchJobError
from rq.job import Job
from tests_support import csrf_for, row, rows

from app.accounts.users import local_user, require_user
from app.extensions import db
from app.generations import lifecycle, spending
from app.generations.lifecycle import CANCELED, INTERRUPTED, QUEUE_DOWN, WORKER_STOPPED
from app.generations.queue import PAUSED_OUT_OF_CREDITS
from app.generations.reaper import sweep
from app.models import Batch, Generation, Status
from app.services import services
from app.worker.jobs import generate

CORE = 3  # credits per Stable Image Core image, the default model


def job_exists(app, job_id) -> bool:
    try:
        Job.fetch(job_id, connection=services(app).redis)
    except NoSuchJobError:
        return False
    return True


def job_of(app, generation_id) -> str:
    return row(app, generation_id).job_id


def used(app, email="ann@example.com") -> float:
    with app.app_context():
        return spending.allowance(require_user(email)).used


@pytest.fixture
def ann(accounts_app):
    """An accounts-mode app whose member ann may spend 30 credits a month."""
    make_user(accounts_app, "ann@example.com", monthly_credits=30)
    return accounts_app


# --- create and enqueue -------------------------------------------------------------------------

def test_a_new_batch_is_queued_rows_each_waiting_for_its_own_job_in_redis(app):
    _, ids = make_batch(app, "a fox", "an owl", images_per_prompt=2)
    made = rows(app, ids)
    assert [g.status for g in made] == ["queued"] * 4 and [g.attempts for g in made] == [0] * 4
    assert len({g.job_id for g in made}) == 4
    assert all(job_exists(app, g.job_id) for g in made)


def test_a_batch_whose_before_commit_raises_is_not_created_and_reserves_nothing(ann):
    def refuse(batch):
        raise RuntimeError("the API's idempotent answer could not be kept")

    with ann.test_request_context(), pytest.raises(RuntimeError):
        lifecycle.create_batch(require_user("ann@example.com"), ["a fox", "an owl"], before_commit=refuse)
    with ann.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert used(ann) == 0


def test_a_queue_outage_fails_a_new_batch_and_gives_its_credits_back(make_app):
    app = make_app(AUTH_MODE="accounts", REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    make_user(app, "ann@example.com", monthly_credits=30)
    _, ids = make_batch(app, "a fox", "an owl", owner_email="ann@example.com")
    assert [(g.status, g.error, g.refunded) for g in rows(app, ids)] == [("failed", QUEUE_DOWN, True)] * 2
    assert used(app) == 0


def test_enqueue_that_may_not_fail_the_rows_leaves_them_queued_for_the_reaper(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    _, ids = make_batch(app, "a fox", enqueue=False)
    with app.app_context():
        assert lifecycle.enqueue(rows(app, ids), fail_if_down=False) == 0
    assert rows(app, ids)[0].status == "queued"


# --- what a job does --------------------------------------------------------------------------

def test_only_the_job_a_queued_row_waits_for_claims_it_and_only_once(app):
    _, (gid,) = make_batch(app, "a fox")
    job_id = job_of(app, gid)
    with app.app_context():
        assert lifecycle.claim(gid, "some-other-job") is None
        claimed = lifecycle.claim(gid, job_id)
        assert (claimed.id, claimed.prompt, claimed.attempts) == (gid, "a fox", 1)
        assert lifecycle.claim(gid, job_id) is None  # a duplicate of the job finds it running
        assert lifecycle.status_of(gid) == "running"
        assert lifecycle.status_of(gid + 1000) is None


def test_a_claim_carries_the_reapers_note_into_the_attempt_and_drops_a_pauses_reason(app):
    _, (stopped, paused) = make_batch(app, "a fox", "an owl")
    with app.app_context():
        assert lifecycle.claim(stopped, job_of(app, stopped)) and lifecycle.claim(paused, job_of(app, paused))
        assert lifecycle.requeue_interrupted(stopped, job_of(app, stopped))
        assert lifecycle.requeue(paused, job_of(app, paused), note=PAUSED_OUT_OF_CREDITS)
        assert lifecycle.claim(stopped, job_of(app, stopped)).note == WORKER_STOPPED
        assert lifecycle.claim(paused, job_of(app, paused)).note is None
    assert [g.error for g in rows(app, [stopped, paused])] == [WORKER_STOPPED, None]


def test_a_row_loaded_before_claim_and_finish_shows_their_changes_in_the_same_session(app):
    # Lifecycle writes skip SQLAlchemy's session synchronisation; a row already loaded must still show the new state.
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


def test_a_canceled_row_begins_no_further_attempt(app):
    _, (gid,) = make_batch(app, "a fox")
    advance(app, gid, Status.RUNNING)
    job_id = job_of(app, gid)
    with app.app_context():
        assert lifecycle.cancel_generation(gid) == 1
        assert not lifecycle.begin_attempt(gid, job_id, 2, "Stability AI had a server error (500) (retrying)")
        assert lifecycle.status_of(gid) == "canceled"
    assert (row(app, gid).attempts, row(app, gid).error) == (1, CANCELED)


def test_a_heartbeat_touches_only_the_running_rows_of_the_jobs_named(app):
    _, (running, queued) = make_batch(app, "a fox", "an owl")
    advance(app, running, Status.RUNNING, started_at=lifecycle.seconds_ago(600))
    before = row(app, running).heartbeat_at
    with app.app_context():
        assert lifecycle.heartbeat([]) == 0
        assert lifecycle.heartbeat([job_of(app, running), job_of(app, queued), "no-such-job"]) == 1
    assert row(app, running).heartbeat_at > before


@pytest.mark.parametrize(("filtered", "status"), [(False, "succeeded"), (True, "filtered")])
def test_finish_makes_a_running_row_succeeded_or_filtered_with_its_outcome(app, filtered, status):
    _, (gid,) = make_batch(app, "a fox")
    advance(app, gid, Status.RUNNING)
    with app.app_context():
        assert lifecycle.finish(gid, job_of(app, gid), filtered, file_name="ab/ab.png", width=512)
    (generation,) = rows(app, [gid])
    assert (generation.status, generation.file_name, generation.width) == (status, "ab/ab.png", 512)
    assert generation.finished_at is not None


def test_finish_discards_the_result_of_a_row_canceled_while_it_ran(app):
    _, (gid,) = make_batch(app, "a fox")
    advance(app, gid, Status.RUNNING)
    advance(app, gid, Status.CANCELED)
    with app.app_context():
        assert not lifecycle.finish(gid, job_of(app, gid), False, file_name="ab/ab.png")
    assert (row(app, gid).status, row(app, gid).file_name) == ("canceled", None)


def test_fail_ends_a_queued_or_running_row_with_its_reason_and_refunds_it_once(ann):
    _, (queued, running) = make_batch(ann, "a fox", "an owl", owner_email="ann@example.com")
    advance(ann, running, Status.RUNNING)
    assert used(ann) == 2 * CORE
    with ann.app_context():
        assert lifecycle.fail(queued, None, "Could not reach the Stability API", error_id="e" * 32)
        assert lifecycle.fail(running, job_of(ann, running), "Stability AI had a server error (500)")
        assert not lifecycle.fail(running, None, "a second failure")  # final: nothing changes, nothing refunded
    assert [(g.status, g.refunded) for g in rows(ann, [queued, running])] == [("failed", True)] * 2
    assert row(ann, queued).api_error_id == "e" * 32
    assert used(ann) == 0


def test_fail_since_a_silence_spares_a_row_whose_worker_beat_since(app):
    _, (gid,) = make_batch(app, "a fox")
    advance(app, gid, Status.RUNNING, started_at=lifecycle.seconds_ago(60))
    with app.app_context():
        assert not lifecycle.fail(gid, job_of(app, gid), INTERRUPTED, silent_since=lifecycle.seconds_ago(120))
        assert lifecycle.fail(gid, job_of(app, gid), INTERRUPTED, silent_since=lifecycle.seconds_ago(30))
    assert row(app, gid).status == "failed"


def test_a_requeued_row_waits_for_a_new_job_with_its_note_and_a_final_row_is_not_requeued(app):
    _, (gid, done) = make_batch(app, "a fox", "an owl")
    advance(app, gid, Status.RUNNING)
    advance(app, done, Status.SUCCEEDED)
    old_job = job_of(app, gid)
    with app.app_context():
        assert lifecycle.requeue(gid, old_job, note=PAUSED_OUT_OF_CREDITS, attempts=0)
        assert not lifecycle.requeue(gid, old_job, note=None)  # the old job lost the row with the first one
        assert not lifecycle.requeue(done, job_of(app, done), note=None)
    (generation,) = rows(app, [gid])
    assert (generation.status, generation.error, generation.attempts, generation.started_at) == (
        "queued", PAUSED_OUT_OF_CREDITS, 0, None)
    assert generation.job_id != old_job and job_exists(app, generation.job_id)
    assert row(app, done).status == "succeeded"


def test_a_row_whose_worker_stopped_goes_back_in_line_without_counting_the_interrupted_attempt(app):
    _, (gid,) = make_batch(app, "a fox")
    advance(app, gid, Status.RUNNING, attempts=2)
    with app.app_context():
        assert lifecycle.requeue_interrupted(gid, job_of(app, gid))
        assert (row(app, gid).attempts, row(app, gid).error) == (1, WORKER_STOPPED)
        assert lifecycle.requeue_interrupted(gid, job_of(app, gid))
        assert lifecycle.requeue_interrupted(gid, job_of(app, gid))  # still queued, and never below none
    assert (row(app, gid).status, row(app, gid).attempts) == ("queued", 0)


# --- what a person does -----------------------------------------------------------------------

def test_cancelling_a_batch_ends_only_its_unfinished_rows_and_takes_their_jobs_out_of_redis(app):
    batch_id, (done, queued, running) = make_batch(app, "a", "b", "c")
    advance(app, done, Status.SUCCEEDED)
    advance(app, running, Status.RUNNING)
    with app.app_context():
        assert lifecycle.cancel_batch(batch_id) == 2
        assert lifecycle.cancel_batch(batch_id) == 0
    assert [g.status for g in rows(app, [done, queued, running])] == ["succeeded", "canceled", "canceled"]
    assert Job.fetch(job_of(app, queued), connection=services(app).redis).get_status() == "canceled"


def test_a_retry_is_a_fresh_attempt_under_a_new_job_keeping_the_old_outcome_as_history(app):
    _, (gid,) = make_batch(app, "a fox")
    advance(app, gid, Status.FAILED, attempts=3, error="Stability AI had a server error (500)",
            api_error_id="e" * 32)
    old_job = job_of(app, gid)
    with app.app_context():
        assert lifecycle.retry(gid)
    (generation,) = rows(app, [gid])
    assert (generation.status, generation.attempts, generation.error, generation.api_error_id) == (
        "queued", 0, None, None)
    assert (generation.started_at, generation.finished_at, generation.refunded) == (None, None, False)
    assert generation.job_id != old_job and job_exists(app, generation.job_id)
    assert [(entry["status"], entry["error"], entry["api_error_id"]) for entry in generation.history] == [
        ("failed", "Stability AI had a server error (500)", "e" * 32)]


def test_only_a_failed_filtered_or_canceled_row_is_retried(app):
    _, ids = make_batch(app, "queued", "running", "succeeded", "failed", "filtered", "canceled")
    for gid, status in zip(ids[1:], ("running", "succeeded", "failed", "filtered", "canceled"), strict=True):
        advance(app, gid, status)
    with app.app_context():
        assert [lifecycle.retry(gid) for gid in ids] == [False, False, False, True, True, True]
    assert [g.status for g in rows(app, ids)] == ["queued", "running", "succeeded", "queued", "queued", "queued"]


def test_a_job_canceled_and_then_retried_cannot_finish_the_new_attempt(app, client):
    batch_id, (gid,) = make_batch(app, "a")
    old_job = job_of(app, gid)
    advance(app, gid, Status.RUNNING)  # the old job has claimed it
    client.post(f"/generations/{gid}/cancel", data={"csrf_token": csrf_for(client)})
    client.post(f"/generations/{gid}/retry", data={"csrf_token": csrf_for(client)})
    new_job = job_of(app, gid)
    assert new_job != old_job
    advance(app, gid, Status.RUNNING)  # now the new job has claimed it
    with app.app_context():
        assert not lifecycle.fail(gid, old_job, "late")  # the old job's result
        assert not lifecycle.finish(gid, old_job, False, error=None)
        assert generate(app, gid, old_job) == "skipped"  # and it cannot claim the row again either
    assert (row(app, gid).status, row(app, gid).error) == ("running", None)


# --- what the reaper does ---------------------------------------------------------------------

def test_the_reaper_requeues_queued_rows_whose_jobs_redis_lost(app):
    _, ids = make_batch(app, "lost in redis", "also lost", at=lifecycle.seconds_ago(3600))
    flush_keeping_lock(services(app).redis, services(app).redis.get(LOCK_KEY))  # Redis restarted empty
    with app.app_context():
        assert sweep(app, force=True).requeued_lost == 2
        assert sweep(app, force=True).requeued_lost == 0  # now queued again: once, not twice
    drain(app)
    assert [g.status for g in rows(app, ids)] == ["succeeded", "succeeded"]


def test_the_reaper_leaves_young_rows_and_live_jobs_alone(app):
    make_batch(app, "just committed", enqueue=False)  # its job is not in Redis yet
    make_batch(app, "still queued", at=lifecycle.seconds_ago(3600))
    with app.app_context():
        assert not sweep(app, force=True).changed


def test_lost_job_candidates_are_the_queued_rows_not_queued_since_then_by_id_after_the_cursor(app):
    _, (first, second, running) = make_batch(app, "a", "b", "c", at=lifecycle.seconds_ago(3600))
    make_batch(app, "young")
    advance(app, running, Status.RUNNING, started_at=lifecycle.seconds_ago(3600))
    since = lifecycle.seconds_ago(60)
    with app.app_context():
        assert lifecycle.queued_without_heartbeat_since(since) == [(first, job_of(app, first)),
                                                                   (second, job_of(app, second))]
        assert lifecycle.queued_without_heartbeat_since(since, after_id=first) == [(second, job_of(app, second))]
        assert lifecycle.queued_without_heartbeat_since(since, limit=1) == [(first, job_of(app, first))]


def test_the_reaper_requeues_a_stale_running_row_as_its_next_attempt(app):
    _, ids = make_batch(app, "worker was killed")
    advance(app, ids[0], Status.RUNNING, started_at=lifecycle.seconds_ago(3600))
    with app.app_context():
        assert sweep(app, force=True).requeued_stale == 1
    (generation,) = rows(app, ids)
    assert (generation.status, generation.error) == ("queued", WORKER_STOPPED)
    html = app.test_client().get(f"/generate/{generation.batch_id}").get_data(as_text=True)
    assert "Worker stopped; retrying (2/3)" in html
    drain(app)
    (generation,) = rows(app, ids)
    assert (generation.status, generation.attempts, generation.error) == ("succeeded", 2, None)


def test_the_reaper_fails_a_stale_running_row_with_no_attempts_left(app):
    _, ids = make_batch(app, "worker was killed thrice")
    advance(app, ids[0], Status.RUNNING, attempts=3, started_at=lifecycle.seconds_ago(3600))
    with app.app_context():
        assert sweep(app, force=True).failed_stale == 1
    assert (rows(app, ids)[0].status, rows(app, ids)[0].error) == ("failed", INTERRUPTED)


def test_a_heartbeat_keeps_a_long_running_row_from_the_reaper(app):
    _, ids = make_batch(app, "slow but alive")
    advance(app, ids[0], Status.RUNNING, started_at=lifecycle.seconds_ago(3600))
    with app.app_context():
        assert lifecycle.heartbeat([job_of(app, ids[0])]) == 1
        assert not sweep(app, force=True).changed
    assert rows(app, ids)[0].status == "running"
