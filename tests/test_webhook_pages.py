"""Webhooks from the account page and the API: add (the secret shown once), refuse private addresses next to the
field with the URL kept, rotate, remove, the deliveries' log with Send again, a batch's own webhook_url; another
user's endpoint or delivery is a 404."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_token, make_user
from standardwebhooks.webhooks import Webhook
from tests_support import bearer, csrf_for, sign_in
from webhook_receiver import WebhookReceiver

from app.extensions import db
from app.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture
def site(make_app):
    app = make_app(AUTH_MODE="accounts", WEBHOOK_ALLOW_PRIVATE=True)
    make_user(app, "ada@example.com")
    make_user(app, "bob@example.com")
    return app


def _signed_in(app, email="ada@example.com"):
    client = app.test_client()
    sign_in(client, email)
    return client


def _add(client, url, events=("batch.completed",), body_format="standard"):
    token = csrf_for(client, "/account/webhooks")
    return client.post("/account/webhooks", data={"csrf_token": token, "url": url, "events": list(events),
                                                  "body_format": body_format})


def test_the_account_page_adds_an_endpoint_and_shows_its_secret_once(site):
    client = _signed_in(site)
    assert "Webhooks" in client.get("/account").get_data(as_text=True)
    answer = _add(client, "http://127.0.0.1:9/hook", events=["batch.completed", "generation.failed"])
    page = answer.get_data(as_text=True)
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    with site.app_context():
        endpoint = db.session.scalars(sa.select(WebhookEndpoint)).one()
        assert endpoint.secret in page and endpoint.events == ["batch.completed", "generation.failed"]
        secret = endpoint.secret
    again = client.get("/account").get_data(as_text=True)
    assert "http://127.0.0.1:9/hook" in again and secret not in again
    rotated = client.post(f"/account/webhooks/{endpoint.id}/rotate", data={"csrf_token": csrf_for(client, "/account")})
    with site.app_context():
        new_secret = db.session.get(WebhookEndpoint, endpoint.id).secret
    assert new_secret != secret and new_secret in rotated.get_data(as_text=True)


def test_a_private_address_is_refused_next_to_the_field_with_the_url_kept(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "ada@example.com")
    client = _signed_in(app)
    answer = _add(client, "http://169.254.169.254/latest/meta-data")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'id="url-error"' in page and "link-local or metadata address" in page
    assert 'value="http://169.254.169.254/latest/meta-data"' in page
    assert _add(client, "http://hook.example", events=[]).status_code == 422
    with app.app_context():
        assert db.session.scalars(sa.select(WebhookEndpoint)).all() == []


def test_someone_elses_endpoint_and_delivery_are_404(site):
    with WebhookReceiver() as receiver:
        _add(_signed_in(site), receiver.url)
        make_batch(site, "a paper boat", owner_email="ada@example.com")
        drain(site)
        drain(site)
    with site.app_context():
        endpoint_id = db.session.scalars(sa.select(WebhookEndpoint.id)).one()
        delivery_id = db.session.scalars(sa.select(WebhookDelivery.id)).one()
    bob = _signed_in(site, "bob@example.com")
    token = csrf_for(bob, "/account")
    for path in (f"/account/webhooks/{endpoint_id}/rotate", f"/account/webhooks/{endpoint_id}/delete",
                 f"/account/webhooks/deliveries/{delivery_id}/resend"):
        assert bob.post(path, data={"csrf_token": token}).status_code == 404
    assert bob.get(f"/api/webhooks/{endpoint_id}/deliveries").status_code == 404


def test_the_log_lists_each_delivery_and_send_again_sends_it_again(site):
    with WebhookReceiver() as receiver:
        client = _signed_in(site)
        _add(client, receiver.url)
        make_batch(site, "a paper boat", owner_email="ada@example.com")
        drain(site)
        drain(site)
        page = client.get("/account").get_data(as_text=True)
        assert "batch.completed" in page and ">200<" in page and "Send again" in page
        with site.app_context():
            delivery_id = db.session.scalars(sa.select(WebhookDelivery.id)).one()
        answer = client.post(f"/account/webhooks/deliveries/{delivery_id}/resend",
                             data={"csrf_token": csrf_for(client, "/account")})
        assert answer.status_code == 303
        drain(site)
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]


def test_the_api_adds_lists_and_removes_endpoints_and_lists_deliveries(site):
    headers = bearer(make_token(site, "ada@example.com"))
    client = site.test_client()
    with WebhookReceiver() as receiver:
        made = client.post("/api/webhooks", json={"url": receiver.url, "events": ["generation.succeeded"]},
                           headers=headers)
        assert made.status_code == 201
        body = made.get_json()
        assert body["secret"].startswith("whsec_") and body["events"] == ["generation.succeeded"]
        listed = client.get("/api/webhooks", headers=headers).get_json()["items"]
        assert [item["id"] for item in listed] == [body["id"]] and "secret" not in listed[0]
        make_batch(site, "a paper boat", owner_email="ada@example.com")
        drain(site)
        drain(site)
        Webhook(body["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)
    deliveries = client.get(f"/api/webhooks/{body['id']}/deliveries", headers=headers).get_json()["items"]
    assert [(d["event"], d["status"], d["attempts"], d["response_status"]) for d in deliveries] == [
        ("generation.succeeded", "succeeded", 1, 200)]
    assert client.delete(f"/api/webhooks/{body['id']}", headers=headers).status_code == 204
    assert client.get("/api/webhooks", headers=headers).get_json()["items"] == []


def test_the_api_refuses_private_addresses_with_the_field_named(make_app):
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "ada@example.com")
    headers = bearer(make_token(app, "ada@example.com"))
    client = app.test_client()
    for url in ("http://127.0.0.1/x", "http://10.0.0.1/x", "http://169.254.169.254/x", "http://[::1]/x"):
        answer = client.post("/api/webhooks", json={"url": url, "events": ["batch.completed"]}, headers=headers)
        assert answer.status_code == 422 and "url" in answer.get_json()["error"]["fields"], url
    answer = client.post("/api/batches", json={"prompts": ["a boat"], "webhook_url": "http://10.0.0.1/x"},
                         headers=headers)
    assert answer.status_code == 422 and "webhook_url" in answer.get_json()["error"]["fields"]
    with app.app_context():
        assert db.session.scalars(sa.select(WebhookEndpoint)).all() == []


def test_a_batch_names_its_own_webhook_url_and_gets_batch_completed_signed_with_the_secret_given(site):
    headers = bearer(make_token(site, "ada@example.com"))
    with WebhookReceiver() as receiver:
        answer = site.test_client().post("/api/batches", json={"prompts": ["a paper boat", "a kite"],
                                                               "webhook_url": receiver.url}, headers=headers)
        assert answer.status_code == 201
        body = answer.get_json()
        drain(site)
        drain(site)
    (request,) = receiver.requests
    event = Webhook(body["webhook_secret"]).verify(request.body, request.headers)
    assert event["type"] == "batch.completed" and event["data"]["batch"]["id"] == body["id"]
    assert "webhook_secret" not in site.test_client().get(f"/api/batches/{body['id']}", headers=headers).get_json()
