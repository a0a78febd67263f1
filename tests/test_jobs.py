"""Generation jobs through a real RQ worker: demo provider, fake Stability server, and every failure path."""

import logging
import pathlib

import pytest
import sqlalchemy as sa
from conftest import API_KEY as KEY
from conftest import drain
from factories import advance, make_batch
from PIL import Image
from rq.job import Job
from tests_support import rows

from app.extensions import db
from app.generations.lifecycle import INTERRUPTED, seconds_ago
from app.generations.queue import PAUSED_BAD_KEY, PAUSED_OUT_OF_CREDITS, pause, paused_reason, resume
from app.generations.reaper import sweep
from app.imaging.decoding import decode_image
from app.imaging.errors import NOT_AN_IMAGE
from app.models import Batch, Generation, Status
from app.services import services
from app.worker.jobs import generate, on_job_failure


def test_demo_provider_job_stores_a_labelled_image_file_and_its_facts(app):
    _, ids = make_batch(app, "a quiet harbour at dawn")
    drain(app)
    (generation,) = rows(app, ids)
    assert generation.status == "succeeded"
    assert generation.provider == "demo" and generation.is_demo
    assert generation.mime_type == "image/png" and generation.width == 512 and generation.height == 512
    assert 0 < generation.seed <= 4_294_967_294
    path = f"{app.config['MEDIA_ROOT']}/{generation.file_name}"
    with Image.open(path) as image:
        assert image.size == (512, 512)
    assert generation.byte_size == pathlib.Path(path).stat().st_size
    assert "harbour" not in generation.file_name  # names are generated, never taken from the prompt
    assert generation.started_at and generation.finished_at


def test_jobs_carry_only_the_generation_id(app):
    _, ids = make_batch(app, "a cat")
    (generation,) = rows(app, ids)
    job = Job.fetch(generation.job_id, connection=services(app).redis)
    assert job.args == (ids[0],) and not job.kwargs


def test_api_job_reaches_the_server_as_documented_and_records_the_answer(api_app, fake):
    _, ids = make_batch(api_app, "a lighthouse in fog")
    drain(api_app)
    (generation,) = rows(api_app, ids)
    assert generation.status == "succeeded" and generation.provider == "stability"
    assert (generation.width, generation.height) == (1536, 1536)  # Core answers at 1.5 MP
    (sent,) = fake.generate_requests
    assert sent.path == "/v2beta/stable-image/generate/core"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.form["prompt"] == "a lighthouse in fog"
    assert generation.seed is not None and generation.finish_reason == "SUCCESS"
    assert generation.api_request_id


@pytest.mark.parametrize(("marker", "status", "reason"), [
    ("[moderate]", "failed", "Blocked by content moderation (not charged)"),
    ("[e422]", "failed", "The API refused the prompt: English is the only supported language for this service."),
    ("[e500]", "failed", "Stability AI had a server error (500); try again later"),
    ("[garbage]", "failed", "The API answered with something that is not a valid image"),
    ("[filter]", "filtered", "Blurred by the API's content filter"),
])
def test_each_api_outcome_ends_with_its_own_status_and_reason(api_app, marker, status, reason):
    _, ids = make_batch(api_app, f"a prompt {marker}", "a fine prompt")
    drain(api_app)
    bad, good = rows(api_app, ids)
    assert (bad.status, bad.error) == (status, reason)
    assert good.status == "succeeded"
    # A failure stores no file; a filtered image is kept, but marked.
    assert bad.has_image == (status == "filtered")
    if marker not in ("[garbage]", "[filter]"):
        assert bad.api_error_id and len(bad.api_error_id) == 32  # kept for support requests
    else:
        assert bad.api_request_id  # a 200 answer's x-request-id is kept even when the image is unusable


def test_a_truncated_answer_ends_its_card_as_not_a_valid_image(api_app, monkeypatch):
    monkeypatch.setattr("app.worker.jobs.decode_image",
                        lambda data, **kwargs: decode_image(data[: len(data) // 2], **kwargs))
    _, ids = make_batch(api_app, "a harbour")
    drain(api_app)
    (generation,) = rows(api_app, ids)
    assert (generation.status, generation.error) == ("failed", NOT_AN_IMAGE)
    assert not [p for p in pathlib.Path(api_app.config["MEDIA_ROOT"]).rglob("*") if p.is_file()]


def test_an_invalid_key_pauses_the_queue_and_says_so(make_app, fake):
    app = make_app(STABILITY_API_KEY="wrong", STABILITY_API_BASE_URL=fake.base_url)
    _, ids = make_batch(app, "a cat", "a dog")
    drain(app)
    assert [g.status for g in rows(app, ids)] == ["queued", "queued"]
    assert rows(app, ids)[0].error == PAUSED_BAD_KEY
    assert paused_reason(services(app).redis) == PAUSED_BAD_KEY
    with app.app_context():
        assert not sweep(app, force=True).resumed  # the balance check is refused too: still paused


def test_an_unreachable_api_fails_the_row_with_a_reason(make_app):
    app = make_app(STABILITY_API_KEY=KEY, STABILITY_API_BASE_URL="http://127.0.0.1:1")
    _, ids = make_batch(app, "a cat")
    drain(app)
    (generation,) = rows(app, ids)
    assert (generation.status, generation.error) == ("failed", "Could not reach the Stability API")


def test_an_unexpected_exception_still_ends_the_row(app, monkeypatch, caplog):
    def explode(self, request):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("app.providers.demo.DemoProvider.generate", explode)
    _, ids = make_batch(app, "a cat")
    with caplog.at_level(logging.ERROR):
        drain(app)
    (generation,) = rows(app, ids)
    assert generation.status == "failed"
    assert "unexpected error" in generation.error and "boom" not in generation.error
    assert "ZeroDivisionError" in caplog.text


def test_a_database_failure_while_storing_removes_the_written_file(app, monkeypatch):
    _, ids = make_batch(app, "a cat")
    real_commit = db.session.commit
    calls = {"n": 0}

    def flaky_commit():
        calls["n"] += 1
        if calls["n"] == 2:  # the commit that records the stored file
            raise sa.exc.OperationalError("UPDATE", {}, Exception("db went away"))
        return real_commit()

    monkeypatch.setattr(db.session, "commit", flaky_commit)
    with app.app_context():
        generate(app, ids[0])
    monkeypatch.undo()
    (generation,) = rows(app, ids)
    assert generation.status == "failed" and generation.file_name is None
    media = app.config["MEDIA_ROOT"]
    assert not [p for p in pathlib.Path(media).rglob("*") if p.is_file()]


def test_a_job_for_a_row_that_is_no_longer_queued_does_nothing(app):
    _, ids = make_batch(app, "a cat")
    drain(app)
    with app.app_context():
        assert generate(app, ids[0]) == "skipped"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Generation)) == 1


def test_failure_callback_fails_a_row_left_running_by_a_dead_worker(app):
    _, ids = make_batch(app, "a cat")
    advance(app, ids[0], Status.RUNNING, started_at=seconds_ago(3600))  # its worker stopped beating long ago
    with app.app_context():
        job = Job.fetch(rows(app, ids)[0].job_id, connection=services(app).redis)
        on_job_failure(job, services(app).redis, None, None, None)
    assert (rows(app, ids)[0].status, rows(app, ids)[0].error) == ("failed", INTERRUPTED)


def test_failure_callback_leaves_a_row_whose_worker_still_beats_for_it(app):
    _, ids = make_batch(app, "a long one")
    advance(app, ids[0], Status.RUNNING, started_at=seconds_ago(1))
    with app.app_context():
        job = Job.fetch(rows(app, ids)[0].job_id, connection=services(app).redis)
        on_job_failure(job, services(app).redis, None, None, None)
    assert rows(app, ids)[0].status == "running"


def test_no_row_is_left_unfinished_after_a_mixed_batch(api_app):
    make_batch(api_app, "ok", "[moderate] x", "[garbage] y", "[filter] z", "[e503] w")
    drain(api_app)
    with api_app.app_context():
        statuses = db.session.scalars(sa.select(Generation.status)).all()
        assert Status.QUEUED not in statuses and Status.RUNNING not in statuses
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 1


def test_a_prompt_whose_first_two_attempts_get_500_ends_with_an_image(api_app, fake):
    _, ids = make_batch(api_app, "a harbour [e500x2]")
    drain(api_app)
    (generation,) = rows(api_app, ids)
    assert generation.status == "succeeded" and generation.attempts == 3 and generation.error is None
    assert [r.status for r in fake.generate_requests] == [500, 500, 200]
    files = sorted(p.suffix for p in pathlib.Path(api_app.config["MEDIA_ROOT"]).rglob("*") if p.is_file())
    assert files == [".jpg", ".png"]  # one image and its thumbnail: retries never store a second


def test_transient_failures_stop_after_the_last_attempt(api_app, fake):
    _, ids = make_batch(api_app, "a harbour [e503]")
    drain(api_app)
    (generation,) = rows(api_app, ids)
    assert (generation.status, generation.attempts) == ("failed", 3)
    assert generation.error == "Stability AI had a server error (503); try again later"
    assert len(fake.generate_requests) == 3


@pytest.mark.parametrize("marker", ["[moderate]", "[e422]"])
def test_permanent_failures_are_never_retried(api_app, fake, marker):
    _, ids = make_batch(api_app, f"a harbour {marker}")
    drain(api_app)
    assert rows(api_app, ids)[0].attempts == 1
    assert len(fake.generate_requests) == 1


def test_a_card_says_retrying_with_the_attempt_count(api_app):
    batch_id, (gid,) = make_batch(api_app, "a harbour")
    advance(api_app, gid, Status.RUNNING, attempts=2)
    html = api_app.test_client().get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Retrying (2/3)" in html


def test_a_429_pauses_every_worker_for_the_lockout(make_app, fake):
    app = make_app(STABILITY_API_KEY=KEY, STABILITY_API_BASE_URL=fake.base_url, STABILITY_LOCKOUT_SECONDS=0.6)
    fake.script(429, {"id": "rate_limit_exceeded", "name": "rate_limit_exceeded", "errors": ["slow down"]})
    _, ids = make_batch(app, "first", "second")
    drain(app)
    assert [g.status for g in rows(app, ids)] == ["succeeded", "succeeded"]
    statuses = [(r.status, r.arrived_at) for r in fake.generate_requests]
    assert statuses[0][0] == 429 and [s for s, _ in statuses[1:]] == [200, 200]
    assert statuses[1][1] - statuses[0][1] >= 0.55  # nobody called during the lockout
    with app.app_context():
        assert services(app).stability.limiter.locked_out_for() == 0


@pytest.mark.parametrize(("marker", "reason"), [("[nocredits]", PAUSED_OUT_OF_CREDITS)])
def test_out_of_credits_pauses_the_queue_instead_of_failing_it(api_app, fake, marker, reason):
    _, ids = make_batch(api_app, f"first {marker}", "second", "third")
    drain(api_app)
    assert len(fake.generate_requests) == 1  # nothing else was sent, so nothing burned
    assert [g.status for g in rows(api_app, ids)] == ["queued"] * 3
    assert rows(api_app, ids)[0].attempts == 0
    assert paused_reason(services(api_app).redis) == reason
    page = api_app.test_client().get("/").get_data(as_text=True)
    assert reason in page
    resume(services(api_app).redis)
    drain(api_app)
    assert rows(api_app, ids)[1].status == "succeeded"


def test_a_successful_balance_check_resumes_a_paused_queue(api_app):
    pause(services(api_app).redis, PAUSED_OUT_OF_CREDITS)
    with api_app.app_context():
        assert sweep(api_app, force=True).resumed
    assert paused_reason(services(api_app).redis) is None
