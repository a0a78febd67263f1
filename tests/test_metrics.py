"""/metrics: refused without the token, absent without one configured, and its counters move as a batch runs."""

import re

from conftest import API_KEY, drain
from factories import make_batch, make_user


def value(text: str, name: str) -> float:
    """The value of one sample line, 0 when absent."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_are_not_served_without_a_token_configured(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_refuse_a_missing_or_wrong_token(make_app):
    client = make_app(METRICS_TOKEN="s3cret-metrics").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_counters_move_as_a_batch_runs(make_app, fake):
    app = make_app(METRICS_TOKEN="s3cret-metrics", STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
                   AUTH_MODE="accounts")
    client = app.test_client()
    auth = {"Authorization": "Bearer s3cret-metrics"}
    before = client.get("/metrics", headers=auth).get_data(as_text=True)
    make_user(app, "m@example.com")
    make_batch(app, "one", "two [moderate]", owner_email="m@example.com")
    queued = client.get("/metrics", headers=auth).get_data(as_text=True)
    assert value(queued, "imagegen_queue_depth") == 2
    drain(app)
    after = client.get("/metrics", headers=auth).get_data(as_text=True)
    assert after.startswith("# HELP") and "text/plain" in client.get("/metrics", headers=auth).content_type
    for name, grew in [('imagegen_generations_finished_total{status="succeeded"}', 1),
                       ('imagegen_generations_finished_total{status="failed"}', 1),
                       ('imagegen_api_responses_total{status_code="200"}', 1),
                       ('imagegen_api_responses_total{status_code="403"}', 1),
                       ('imagegen_credits_spent_total{model="core"}', 3),
                       ("imagegen_api_latency_seconds_count", 2), ("imagegen_job_duration_seconds_count", 2)]:
        assert value(after, name) - value(before, name) == grew, name
    assert value(after, "imagegen_queue_depth") == 0
    assert value(after, "imagegen_jobs_in_flight") == 0
