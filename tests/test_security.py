"""Baseline security: CSP, escaping, CSRF, body caps, error pages, the API key, and the rq dashboard."""

import base64
import pathlib
import re

import pytest
import sqlalchemy as sa
from conftest import drain
from rq.job import Job
from tests_support import csrf_for

from app.extensions import db
from app.models import Generation
from app.services import services

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEY = "sk-secret-never-shown-0123456789abcdef"


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("url", ["/", "/all/", "/generate/1", "/nowhere"])
def test_every_page_sends_a_strict_content_security_policy(client, url):
    policy = client.get(url).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy


def test_templates_have_no_inline_scripts_handlers_or_styles():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert not re.search(r"\sstyle\s*=", text), template
        assert "hx-on" not in text, template


def test_htmx_is_vendored_as_version_2_with_its_licence():
    vendor = ROOT / "static" / "vendor" / "htmx"
    assert "2.0.11" in (vendor / "VERSION").read_text()
    assert (vendor / "LICENSE").exists()
    assert 'version:"2.0.11"' in (vendor / "htmx.min.js").read_text().replace(" ", "")


def test_request_bodies_over_the_cap_are_refused_with_a_page(client, csrf_token):
    response = client.post("/", data={"csrf_token": csrf_token, "prompts-0": "x" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_an_unexpected_error_shows_a_plain_page_without_a_traceback(app, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr("app.batches.routes.generations_of", broken)
    response = client.get("/generate/1")
    text = response.get_data(as_text=True)
    assert "Something went wrong" in text
    assert "internal detail" not in text and "Traceback" not in text


def test_the_api_key_is_never_in_a_page_a_job_redis_or_a_log(make_app, caplog):
    app = make_app(STABILITY_API_KEY=KEY, STABILITY_API_BASE_URL="http://127.0.0.1:1")
    client = app.test_client()
    token = csrf_for(client)
    location = client.post("/", data={"csrf_token": token, "prompts-0": "a cat"}).headers["Location"]
    connection = services(app).redis
    with app.app_context():
        job = Job.fetch(db.session.scalars(sa.select(Generation.job_id)).one(), connection=connection)
    assert KEY not in repr(job.args) + repr(job.kwargs) + repr(job.meta)
    with caplog.at_level("DEBUG"):
        drain(app)
    assert KEY not in caplog.text
    for url in ("/", location, location.replace("/generate/", "/api/batches/"), "/all/"):
        assert KEY not in client.get(url).get_data(as_text=True)
    for key in connection.keys("*"):
        kind = connection.type(key)
        value = connection.get(key) if kind == b"string" else connection.hgetall(key) if kind == b"hash" else b""
        assert KEY.encode() not in repr(value).encode()


def test_rq_dashboard_is_absent_without_credentials(client):
    assert client.get("/rq/").status_code == 404


@pytest.fixture
def dashboard_app(make_app):
    return make_app(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="s3cret")


def test_rq_dashboard_asks_for_basic_auth(dashboard_app):
    client = dashboard_app.test_client()
    response = client.get("/rq/")
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    assert client.get("/rq/", headers=basic("ops", "wrong")).status_code == 401


def test_rq_dashboard_opens_with_the_right_credentials_under_its_own_policy(dashboard_app):
    response = dashboard_app.test_client().get("/rq/", headers=basic("ops", "s3cret"))
    assert response.status_code == 200
    assert "unsafe-inline" in response.headers["Content-Security-Policy"]


def test_rq_dashboard_post_from_another_site_is_refused_even_with_credentials(dashboard_app):
    client = dashboard_app.test_client()
    url = "/rq/queue/generations/queued/empty"
    assert client.post(url, headers=basic("ops", "s3cret")).status_code == 403
    assert client.post(url, headers={**basic("ops", "s3cret"), "Origin": "https://evil.example"}).status_code == 403


def test_rq_dashboard_post_from_its_own_pages_is_allowed(dashboard_app):
    client = dashboard_app.test_client()
    response = client.post("/rq/queue/generations/queued/empty",
                           headers={**basic("ops", "s3cret"), "Origin": "http://localhost"})
    assert response.status_code == 200


@pytest.mark.parametrize("url", [
    "/images/99999999999999999999", "/images/99999999999999999999/file", "/generate/99999999999",
    "/generate/99999999999/status", "/api/batches/99999999999", "/generate/2147483648/images.zip",
])
def test_ids_beyond_the_database_range_are_404_not_500(client, url):
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", ["/?reuse=²", "/?reuse=99999999999999999999", "/all/?before=²-1",
                                 "/all/?before=99999999999999999999-1", "/all/?before=1-99999999999999999999"])
def test_malformed_query_values_are_ignored_not_500(client, url):
    assert client.get(url).status_code == 200


def test_a_malformed_remove_index_is_not_a_500(client):
    response = client.post("/", data={"csrf_token": csrf_for(client), "prompts-0": "a", "remove_row": "²"})
    assert response.status_code in (200, 303, 422)
