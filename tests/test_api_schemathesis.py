"""Schemathesis against the live API, from its own OpenAPI document: no 5xx, and every answer matches the document.

A real HTTP server (werkzeug, in a thread) serves the test app in accounts mode; every case carries a token.
Examples are bounded and derandomized, so each run sends the same requests and stays well under a minute.
"""

import re
import tempfile
import threading
import uuid

import pytest
import schemathesis
from conftest import drain
from factories import make_token, make_user
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from tests_support import bearer
from werkzeug.serving import make_server

from app import create_app
from app.api.openapi import document
from app.api.schemas import IDEMPOTENCY_KEY_PATTERN
from app.config import TestConfig

EXAMPLES_PER_OPERATION = 25
VALID_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
# Private webhook addresses allowed: a generated URL's host is then not looked up when it is saved (a name that
# does not resolve is refused, rightly, which no schema can say); tests/test_webhooks.py covers the refusals.
SETTINGS = {"AUTH_MODE": "accounts", "API_RATE_LIMIT": "100000/minute", "WEBHOOK_ALLOW_PRIVATE": True}


def served_document() -> dict:
    """The document as the live app serves it (writing it needs no database or Redis, so it is known at collection)."""
    with tempfile.TemporaryDirectory() as instance:
        return document(create_app(TestConfig(instance, **SETTINGS)))


DOCUMENT = served_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


# Refusals by rules no schema states, each with its own code: templates, wildcard lists, a grid's cells and
# MAX_IMAGES_PER_BATCH (variation_refused); which fields an operation needs and the limits the image's own size sets
# (edit_refused). A schema-valid body so refused is still checked against the document, not as a valid body refused.
RULE_REFUSALS = (b'"code":"variation_refused"', b'"code":"edit_refused"')


def _answers_rule_refusals(monkeypatch) -> None:
    """Patched here rather than written in the test, whose source seeds Hypothesis's derandomized examples."""
    def call_and_validate(case, base_url=None, session=None, headers=None, excluded_checks=None, **kwargs):
        response = case.call(base_url, session, headers)
        compact = response.content.replace(b" ", b"")
        refused = response.status_code == 422 and any(code in compact for code in RULE_REFUSALS)
        transport = {"base_url": base_url, "headers": dict(headers or {})}
        excluded = [*(excluded_checks or []), *([positive_data_acceptance] if refused else [])]
        # A query parameter generated with no values (`{"": []}`) is not sent at all: the request that went is not
        # the schema-violating one Schemathesis believes it sent, so its acceptance proves nothing.
        if any(value == [] for value in (case.query or {}).values()):
            excluded.append(negative_data_rejection)
        case.validate_response(response, headers=headers, transport_kwargs=transport,
                               excluded_checks=excluded or None)
        return response

    monkeypatch.setattr(schemathesis.Case, "call_and_validate", call_and_validate)


@pytest.fixture
def live_api(make_app, monkeypatch):
    """The app on a loopback port with a member, a token, and a finished batch to find."""
    _answers_rule_refusals(monkeypatch)
    app = make_app(**SETTINGS)
    make_user(app, "fuzz@example.com")
    secret = make_token(app, "fuzz@example.com")
    client = app.test_client()
    client.post("/api/batches", json={"prompts": ["a", "b"]}, headers=bearer(secret))
    drain(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", secret
    finally:
        server.shutdown()
        thread.join()


def test_the_live_server_serves_the_document_under_test(live_api):
    import requests

    base_url, _ = live_api
    assert requests.get(f"{base_url}/api/openapi.json", timeout=10).json() == DOCUMENT


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, live_api):
    base_url, secret = live_api
    # A fresh key per case: two generated bodies sharing a key would rightly get 422 (key reused), which is the
    # idempotency rule at work, not a valid request refused. An invalid key is sent as generated.
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    # An upload's bytes are "binary" to JSON Schema: whether they decode as an image no schema can say, so a
    # well-formed body with a file that is no picture is rightly refused (422), not a schema-valid request turned down.
    excluded = [positive_data_acceptance] if case.path == "/api/uploads" else []
    case.call_and_validate(base_url=base_url, headers=bearer(secret), excluded_checks=excluded)
