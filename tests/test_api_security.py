"""CSRF for browser sessions but not for tokens, the per-token rate limit, and JSON errors under /api/."""

import pytest
from factories import make_token, make_user
from tests_support import bearer, csrf_for, sign_in

BODY = {"prompts": ["a fox"]}


def test_a_cookie_session_post_needs_the_csrf_token(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    csrf = csrf_for(client)
    refused = client.post("/api/batches", json=BODY)
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"
    assert client.post("/api/batches", json=BODY, headers={"X-CSRFToken": csrf}).status_code == 201
    batch_id = client.get("/api/batches").get_json()["items"][0]["id"]
    assert client.post(f"/api/batches/{batch_id}/cancel").status_code == 400
    assert client.post(f"/api/batches/{batch_id}/cancel", headers={"X-CSRFToken": csrf}).status_code == 200


def test_a_token_request_needs_no_csrf_token(accounts_app):
    make_user(accounts_app, "ann@example.com")
    secret = make_token(accounts_app, "ann@example.com")
    assert accounts_app.test_client().post("/api/batches", json=BODY, headers=bearer(secret)).status_code == 201


def test_without_accounts_a_script_needs_neither_token_nor_csrf_but_a_browser_session_does(app):
    script = app.test_client(use_cookies=False)
    assert script.post("/api/batches", json=BODY).status_code == 201
    browser = app.test_client()
    csrf = csrf_for(browser)  # the session cookie now rides along
    assert browser.post("/api/batches", json=BODY).status_code == 400
    assert browser.post("/api/batches", json=BODY, headers={"X-CSRFToken": csrf}).status_code == 201


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_without_accounts_another_sites_page_cannot_post(app, headers):
    script = app.test_client(use_cookies=False)
    response = script.post("/api/batches", json=BODY, headers=headers)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "csrf_failed"


def test_each_token_has_its_own_request_budget_and_429_says_when_to_retry(make_app):
    app = make_app(AUTH_MODE="accounts", API_RATE_LIMIT="3/minute")
    make_user(app, "ann@example.com")
    first, second = (bearer(make_token(app, "ann@example.com", name)) for name in ("one", "two"))
    client = app.test_client()
    assert [client.get(url, headers=first).status_code
            for url in ("/api/me", "/api/batches", "/api/images")] == [200, 200, 200]
    limited = client.get("/api/me", headers=first)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61  # the rest of the one-minute window
    assert client.get("/api/me", headers=second).status_code == 200


def test_a_bad_rate_limit_setting_stops_the_start(monkeypatch, tmp_path):
    from app.config import Config, ConfigError

    monkeypatch.setenv("API_RATE_LIMIT", "lots")
    with pytest.raises(ConfigError, match="API_RATE_LIMIT"):
        Config(str(tmp_path))


@pytest.mark.parametrize(("method", "url", "status", "code"), [
    ("get", "/api/nowhere", 404, "not_found"),
    ("get", "/api/batches/99999999999", 404, "not_found"),
    ("put", "/api/me", 405, "method_not_allowed"),
    ("delete", "/api/batches", 405, "method_not_allowed"),
])
def test_errors_under_api_are_json_in_one_shape(client, method, url, status, code):
    response = getattr(client, method)(url)
    assert response.status_code == status and response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == code and response.get_json()["error"]["message"]
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_an_unexpected_api_error_is_a_plain_json_500(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr("app.api.routes.generations_of", broken)
    response = client.get("/api/batches/1")
    assert response.status_code == 500
    assert response.get_json() == {"error": {"code": "server_error",
                                             "message": "Something went wrong; the error has been logged."}}


def test_a_body_over_the_cap_is_a_json_413(client):
    response = client.post("/api/batches", data="x" * (1024 * 1024 + 10), content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"


def test_anonymous_requests_get_a_json_401_in_accounts_mode(accounts_app):
    response = accounts_app.test_client().get("/api/batches")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
