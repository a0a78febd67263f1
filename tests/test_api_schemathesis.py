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


@pytest.fixture
def live_api(make_app):
    """The app on a loopback port with a member, a token, and a finished batch to find."""
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
    case.call_and_validate(base_url=base_url, headers=bearer(secret))
