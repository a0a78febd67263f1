"""Webhooks: a real batch made by a real RQ worker is delivered, signed (checked with standardwebhooks), to a real
HTTP server; retries, no redirects, the timeout, auto-disable, Slack bodies, and SSRF refused at save and at send."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch
from standardwebhooks.webhooks import Webhook
from webhook_receiver import WebhookReceiver

from app.accounts.users import local_user
from app.extensions import db
from app.models import WebhookDelivery, WebhookEndpoint, utcnow
from app.webhooks import addresses, delivery, endpoints

PRIVATE_URLS = ["http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
                "http://[::1]:8080/hook", "http://hooks.internal.example/hook", "http://localhost:9/hook"]


def _fake_dns(monkeypatch) -> None:
    """hooks.internal.example resolves to a private address, as a name on an office network would."""
    real = addresses.resolve_host
    monkeypatch.setattr(addresses, "resolve_host", lambda host, port: (
        ["10.20.30.40"] if host == "hooks.internal.example" else real(host, port)))


def _endpoint(app, url: str, events=("batch.completed",), body_format: str = "standard") -> tuple[int, str]:
    with app.test_request_context():
        endpoint = endpoints.create(local_user(), url, list(events), body_format)
        return endpoint.id, endpoint.secret


def _deliveries(app) -> list[WebhookDelivery]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))
        db.session.expunge_all()
        return found


def _sweep_when_due(app, seconds: float) -> None:
    """Wait for the retry delay, then do the reaper's part: queue what is due."""
    time.sleep(seconds)
    with app.app_context():
        delivery.enqueue_due()


@pytest.fixture
def hook_app(make_app):
    return make_app(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_BASE_DELAY=0.1, WEBHOOK_TIMEOUT=1.0)


def test_a_real_batch_is_delivered_as_batch_completed_and_the_signature_verifies(hook_app):
    with WebhookReceiver() as receiver:
        _, secret = _endpoint(hook_app, receiver.url, events=["batch.completed", "generation.succeeded"])
        batch_id, ids = make_batch(hook_app, "a paper boat on a pond", "a lighthouse", images_per_prompt=2)
        drain(hook_app)  # four images, then their deliveries (queued behind them in the same queue)
        drain(hook_app)
        bodies = [Webhook(secret).verify(r.body, r.headers) for r in receiver.requests]
    completed = [b for b in bodies if b["type"] == "batch.completed"]
    assert len(completed) == 1 and len([b for b in bodies if b["type"] == "generation.succeeded"]) == 4
    data = completed[0]["data"]
    assert data["batch"]["id"] == batch_id and data["batch"]["counts"]["images"] == 4
    assert data["batch"]["counts"]["succeeded"] == 4 and data["summary"].startswith("4 images ready — a paper boat")
    assert [image["id"] for image in data["images"]] == ids
    assert all(image["url"].endswith(f"/images/{image['id']}/file") for image in data["images"])
    assert data["batch"]["url"].endswith(f"/generate/{batch_id}")
    request = receiver.requests[-1]
    assert request.path == "/hooks/images" and request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_") and request.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(request.body + b" ", request.headers)
    assert all(d.status == "succeeded" and d.response_status == 200 and d.attempts == 1 for d in _deliveries(hook_app))


def test_an_endpoint_answering_500_twice_gets_the_third_attempt_with_the_same_message_id(hook_app):
    with WebhookReceiver(answers=[500, 500]) as receiver:
        _endpoint(hook_app, receiver.url)
        make_batch(hook_app, "a paper boat")
        drain(hook_app)
        drain(hook_app)
        (first,) = _deliveries(hook_app)
        assert (first.status, first.attempts, first.response_status) == ("waiting", 1, 500)
        assert first.next_attempt_at is not None
        _sweep_when_due(hook_app, 0.15)
        drain(hook_app)
        assert _deliveries(hook_app)[0].status == "waiting"
        _sweep_when_due(hook_app, 0.25)
        drain(hook_app)
    (done,) = _deliveries(hook_app)
    assert (done.status, done.attempts, done.response_status, done.error) == ("succeeded", 3, 200, None)
    assert len(receiver.requests) == 3 and len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_five_failed_attempts_end_the_delivery_and_send_again_starts_over(hook_app):
    with WebhookReceiver(answers=[503] * 5) as receiver:
        _endpoint(hook_app, receiver.url)
        make_batch(hook_app, "a paper boat")
        drain(hook_app)
        for attempt in range(1, 6):
            drain(hook_app)
            _sweep_when_due(hook_app, 0.1 * 2 ** attempt)
        (failed,) = _deliveries(hook_app)
        assert (failed.status, failed.attempts, failed.error) == ("failed", 5, "Answered 503")
        with hook_app.app_context():
            assert delivery.send_again(db.session.get(WebhookDelivery, failed.id))
        drain(hook_app)
    (again,) = _deliveries(hook_app)
    assert (again.status, again.attempts) == ("succeeded", 1) and len(receiver.requests) == 6


def test_a_redirect_is_not_followed_and_a_slow_answer_times_out(make_app):
    app = make_app(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_TIMEOUT=0.5, WEBHOOK_ATTEMPTS=1)
    with WebhookReceiver(answers=[302], location="http://127.0.0.1:9/elsewhere") as redirecting, \
            WebhookReceiver(delay=1.5) as slow:
        _endpoint(app, redirecting.url)
        _endpoint(app, slow.url)
        make_batch(app, "a paper boat")
        drain(app)
        drain(app)
    outcomes = sorted((d.response_status or 0, d.error) for d in _deliveries(app))
    assert outcomes == [(0, "No answer: ReadTimeoutError"), (302, "Answered 302")]
    assert len(redirecting.requests) == 1


def test_slack_and_discord_bodies_carry_the_summary_and_the_batch_link(hook_app):
    with WebhookReceiver() as slack, WebhookReceiver() as discord:
        _, slack_secret = _endpoint(hook_app, slack.url, body_format="slack")
        _endpoint(hook_app, discord.url, body_format="discord")
        batch_id, _ = make_batch(hook_app, "a paper boat")
        drain(hook_app)
        drain(hook_app)
    text = Webhook(slack_secret).verify(slack.requests[0].body, slack.requests[0].headers)["text"]
    assert text.startswith("1 image ready — a paper boat ") and text.endswith(f"/generate/{batch_id}")
    assert set(json.loads(discord.requests[0].body)) == {"content"}


def test_an_endpoint_failing_for_a_day_is_disabled_with_a_note(hook_app):
    with WebhookReceiver(answers=[500]) as receiver:
        endpoint_id, _ = _endpoint(hook_app, receiver.url)
        with hook_app.app_context():
            db.session.get(WebhookEndpoint, endpoint_id).failing_since = utcnow() - timedelta(hours=25)
            db.session.commit()
        make_batch(hook_app, "a paper boat")
        drain(hook_app)
        drain(hook_app)
    with hook_app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert not endpoint.enabled and "failed (last: Answered 500)" in endpoint.disabled_reason
        assert db.session.scalars(sa.select(WebhookDelivery.status)).all() == ["failed"]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_addresses_are_refused_at_save(app, monkeypatch, url):
    _fake_dns(monkeypatch)
    with app.test_request_context(), pytest.raises(endpoints.EndpointRefused, match="private"):
        endpoints.create(local_user(), url, ["batch.completed"])


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_addresses_are_refused_at_send_without_a_request(make_app, monkeypatch, url):
    """Saved while allowed (or while the name resolved publicly); refused when the delivery goes."""
    _fake_dns(monkeypatch)
    app = make_app(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_ATTEMPTS=1)
    _endpoint(app, url)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    monkeypatch.setattr(delivery, "post", lambda *_: pytest.fail("a refused address was connected to"))
    make_batch(app, "a paper boat")
    drain(app)
    drain(app)
    (refused,) = _deliveries(app)
    assert refused.status == "failed" and refused.error.startswith("Refused: ") and "private" in refused.error


def test_the_send_connects_to_the_address_checked_not_a_second_lookup(hook_app, monkeypatch):
    """DNS is resolved once per attempt and the connection pinned to it (no rebinding between check and send)."""
    with WebhookReceiver() as receiver:
        port = receiver.server.server_port
        lookups = []
        monkeypatch.setattr(addresses, "resolve_host", lambda host, p: lookups.append(host) or ["127.0.0.1"])
        _, secret = _endpoint(hook_app, f"http://hooks.example.test:{port}/in")
        make_batch(hook_app, "a paper boat")
        drain(hook_app)
        drain(hook_app)
    assert lookups == ["hooks.example.test"]  # the send only: with private addresses allowed, saving looks nothing up
    assert receiver.requests[0].headers["host"] == f"hooks.example.test:{port}"
    Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)


def test_public_addresses_pass_the_check():
    assert addresses.check("https://93.184.215.14/hook", allow_private=False).addresses == ("93.184.215.14",)
    for bad in ("ftp://example.com/", "https://user:pw@example.com/", "https://example.com:99999/", "not a url"):
        with pytest.raises(addresses.AddressRefused):
            addresses.parse(bad)


def test_a_name_that_resolved_publicly_at_save_and_privately_at_send_is_refused(make_app, monkeypatch):
    """DNS rebinding: the address is looked up again for each delivery, and that answer is the one checked."""
    app = make_app(WEBHOOK_ATTEMPTS=1)
    answers = iter([["93.184.215.14"], ["10.0.0.5"]])
    monkeypatch.setattr(addresses, "resolve_host", lambda host, port: next(answers))
    monkeypatch.setattr(delivery, "post", lambda *_: pytest.fail("a refused address was connected to"))
    _endpoint(app, "https://hooks.example.test/in")  # saved: it resolved to a public address then
    make_batch(app, "a paper boat")
    drain(app)
    drain(app)
    (refused,) = _deliveries(app)
    assert refused.status == "failed" and "resolves to 10.0.0.5" in refused.error
