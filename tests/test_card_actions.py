"""Cancel and retry on the generate page, with htmx and without."""

from conftest import drain
from factories import advance, make_batch, make_images
from rq.job import Job
from tests_support import csrf_for, row

from app.models import Status
from app.services import services
from app.worker.jobs import generate


def test_cancel_a_queued_generation_removes_its_job_and_the_worker_skips_it(app, client):
    batch_id, (first, second) = make_batch(app, "a", "b")
    token = csrf_for(client)
    response = client.post(f"/generations/{first}/cancel", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == f"/generate/{batch_id}"
    assert row(app, first).status == "canceled"
    job = Job.fetch(row(app, first).job_id, connection=services(app).redis)
    assert job.get_status() == "canceled"
    drain(app)
    assert (row(app, first).status, row(app, second).status) == ("canceled", "succeeded")
    assert "Canceled." in client.get(f"/generate/{batch_id}").get_data(as_text=True)


def test_cancel_with_htmx_answers_the_cards_and_progress_out_of_band(app, client):
    batch_id, (first, _) = make_batch(app, "a", "b")
    html = client.post(f"/generations/{first}/cancel", headers={"HX-Request": "true", "X-CSRFToken": csrf_for(client)}
                       ).get_data(as_text=True)
    assert 'id="batch-progress"' in html and html.count('hx-swap-oob="true"') == 3
    assert f'id="generation-{first}"' in html and 'data-status="canceled"' in html
    assert "Canceled." in html


def test_a_running_generation_canceled_midway_discards_its_late_result(app, client, monkeypatch):
    batch_id, (first,) = make_batch(app, "a")

    def cancel_while_generating(self, request):
        client.post(f"/generations/{first}/cancel", data={"csrf_token": csrf_for(client)})
        return real_generate(self, request)

    from app.providers.demo import DemoProvider

    real_generate = DemoProvider.generate
    monkeypatch.setattr(DemoProvider, "generate", cancel_while_generating)
    with app.app_context():
        generate(app, first)
    generation = row(app, first)
    assert generation.status == "canceled" and generation.file_name is None
    media = list(p for p in __import__("pathlib").Path(app.config["MEDIA_ROOT"]).rglob("*") if p.is_file())
    assert media == []


def test_cancel_the_rest_of_a_batch_leaves_finished_cards_alone(app, client):
    batch_id, (done, queued, running) = make_batch(app, "a", "b", "c")
    advance(app, done, Status.SUCCEEDED)
    advance(app, running, Status.RUNNING)
    client.post(f"/generate/{batch_id}/cancel", data={"csrf_token": csrf_for(client)})
    assert [row(app, i).status for i in (done, queued, running)] == ["succeeded", "canceled", "canceled"]


def test_retry_a_failed_card_keeps_the_old_error_in_its_history_and_makes_an_image(app, client):
    batch_id, (first,) = make_batch(app, "a")
    advance(app, first, Status.FAILED, attempts=3,
            error="Stability AI had a server error (500); try again later", api_error_id="e" * 32)
    response = client.post(f"/generations/{first}/retry", data={"csrf_token": csrf_for(client)})
    assert response.status_code == 303
    generation = row(app, first)
    assert (generation.status, generation.error, generation.attempts) == ("queued", None, 0)
    assert generation.history[0]["error"].startswith("Stability AI had a server error")
    assert generation.history[0]["api_error_id"] == "e" * 32
    drain(app)
    assert row(app, first).status == "succeeded"
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Earlier attempts (1)" in page and "server error (500)" in page


def test_retry_a_filtered_card_replaces_its_blurred_file(app, client):
    batch_id, (first,) = make_images(app, "a", filtered=True)
    old = row(app, first)
    assert old.status == Status.FILTERED
    client.post(f"/generations/{first}/retry", data={"csrf_token": csrf_for(client)})
    import pathlib

    assert not (pathlib.Path(app.config["MEDIA_ROOT"]) / old.file_name).exists()
    assert not (pathlib.Path(app.config["MEDIA_ROOT"]) / old.thumb_name).exists()
    drain(app)
    assert row(app, first).status == "succeeded" and row(app, first).file_name != old.file_name


def test_retry_of_a_card_that_did_not_fail_changes_nothing(app, client):
    batch_id, (first,) = make_batch(app, "a")
    client.post(f"/generations/{first}/retry", data={"csrf_token": csrf_for(client)})
    assert row(app, first).status == "queued" and row(app, first).history == []


def test_a_retry_restarts_polling_on_a_finished_batch(app, client):
    batch_id, (first,) = make_batch(app, "a")
    advance(app, first, Status.FAILED, error="x")
    html = client.post(f"/generations/{first}/retry", headers={"HX-Request": "true", "X-CSRFToken": csrf_for(client)}
                       ).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in html  # queued again: the slower poll until it runs


def test_actions_refuse_requests_without_a_csrf_token(app, client):
    batch_id, (first,) = make_batch(app, "a")
    for url in (f"/generations/{first}/cancel", f"/generations/{first}/retry", f"/generate/{batch_id}/cancel"):
        assert client.post(url).status_code == 400
    assert row(app, first).status == "queued"


def test_actions_on_unknown_ids_are_404(client):
    token = csrf_for(client)
    for url in ("/generations/999/cancel", "/generations/999/retry", "/generate/999/cancel"):
        assert client.post(url, data={"csrf_token": token}).status_code == 404


def test_cards_show_their_place_in_the_queue_and_elapsed_time(app, client):
    batch_id, (first, second, third) = make_batch(app, "a", "b", "c")
    advance(app, first, Status.RUNNING)
    html = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "next in line" in html and "1 ahead" in html
    assert 'class="elapsed" data-elapsed="0"' in html


def test_deleting_the_last_image_of_a_batch_removes_the_batch(app, client):
    batch_id, (gid,) = make_batch(app, "a")
    drain(app)
    client.post(f"/images/{gid}/delete", data={"csrf_token": csrf_for(client)})
    assert client.get(f"/generate/{batch_id}").status_code == 404


def test_a_card_whose_history_reached_the_cap_says_it_shows_the_last_ten(app, client):
    batch_id, (first, second) = make_batch(app, "a", "b")
    token = csrf_for(client)
    for generation_id, errors in ((first, [f"attempt {n}" for n in range(12)]),
                                  (second, [f"try {n}" for n in range(9)])):
        for error in errors:  # each failure becomes history when the card is retried
            advance(app, generation_id, Status.FAILED, error=error)
            client.post(f"/generations/{generation_id}/retry", data={"csrf_token": token})
        advance(app, generation_id, Status.FAILED, error="x")
    page = client.get(f"/generate/{batch_id}").get_data(as_text=True)
    assert "Earlier attempts (showing the last 10)" in page
    assert "Earlier attempts (9)" in page
    assert "attempt 1<" not in page and "attempt 2<" in page and "attempt 11<" in page
