"""TRUSTED_PROXIES: behind a proxy each client has its own address and scheme; without one, X-Forwarded-* is ignored."""

from __future__ import annotations

import os
import re
import sys
from functools import partial
from pathlib import Path

import pytest
import requests
from factories import make_token, make_user
from tests_support import PASSWORD, bearer, sign_in

from app.accounts import devices
from app.config import Config, ConfigError
from app.processes.group import ProcessGroup, free_port, http_ok

# Sign-in attempts whose status the tests read themselves.
attempt_sign_in = partial(sign_in, expect=None)

ROOT = Path(__file__).resolve().parents[1]
PROXY = "10.0.0.2"  # the load balancer: every request reaches the app from its address
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def through_proxy(app, forwarded_for: str, proto: str = "http"):
    """A test client whose requests arrive from the proxy, carrying the headers it adds."""
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for, HTTP_X_FORWARDED_PROTO=proto)
    return client


def spend_address_budget(app, client) -> list[int]:
    """21 wrong sign-ins for different accounts from one client: 20 fit the address's budget."""
    return [attempt_sign_in(client, f"user{i}@example.com", "wrong").status_code for i in range(21)]


@pytest.fixture
def proxied_app(make_app):
    return make_app(AUTH_MODE="accounts", TRUSTED_PROXIES=1)


def test_behind_a_trusted_proxy_two_clients_have_separate_budgets(proxied_app):
    assert spend_address_budget(proxied_app, through_proxy(proxied_app, "198.51.100.1"))[-2:] == [401, 429]
    other = through_proxy(proxied_app, "198.51.100.2")
    assert attempt_sign_in(other, "user0@example.com", "wrong").status_code == 401


def test_behind_a_trusted_proxy_a_forged_forwarded_address_counts_for_nothing(proxied_app):
    assert spend_address_budget(proxied_app, through_proxy(proxied_app, "198.51.100.1"))[-1] == 429
    # The same client writes its own X-Forwarded-For; the proxy appends the address it really came from.
    forged = through_proxy(proxied_app, "192.0.2.99, 198.51.100.1")
    assert attempt_sign_in(forged, "someone@example.com", "wrong").status_code == 429


def test_without_the_setting_the_forwarded_headers_change_nothing(make_app):
    app = make_app(AUTH_MODE="accounts")
    assert spend_address_budget(app, through_proxy(app, "198.51.100.1"))[-1] == 429
    assert attempt_sign_in(through_proxy(app, "198.51.100.2"), "user0@example.com", "wrong").status_code == 429
    make_user(app, "ann@example.com")
    secret = make_token(app, "ann@example.com")
    me = through_proxy(app, "198.51.100.3", proto="https").post("/api/batches", json={"prompts": ["a fox"]},
                                                                 headers=bearer(secret))
    assert me.status_code == 201 and me.get_json()["url"].startswith("http://localhost/")


def test_behind_a_trusted_proxy_the_scheme_is_https_links_and_cookies_too(proxied_app):
    make_user(proxied_app, "ann@example.com")
    client = through_proxy(proxied_app, "198.51.100.1", proto="https")
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    # Over HTTPS Flask-WTF also wants a same-origin Referer, as a browser sends (Referrer-Policy: same-origin).
    response = client.post("/login", data={"csrf_token": token, "email": "ann@example.com", "password": PASSWORD},
                           headers={"Referer": "https://localhost/login"})
    assert response.status_code == 303
    device = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(devices.COOKIE_NAME))
    assert "Secure" in device
    made = client.post("/api/batches", json={"prompts": ["a fox"]}, headers=bearer(make_token(proxied_app,
                                                                                              "ann@example.com")))
    assert made.status_code == 201 and made.get_json()["url"].startswith("https://localhost/")


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_trusted_proxies_setting_stops_the_start(monkeypatch, tmp_path, value):
    monkeypatch.setenv("TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES must be an integer of at least 0"):
        Config(str(tmp_path))


def test_trusted_proxies_defaults_to_none(monkeypatch, tmp_path):
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert Config(str(tmp_path)).TRUSTED_PROXIES == 0


# --- the production server: gunicorn with app/gunicorn_config.py, reached over real HTTP from 127.0.0.1 ---------


def gunicorn(tmp_path: Path, database_url: str, redis_url: str, trusted: int) -> tuple[ProcessGroup, str]:
    """gunicorn as the README runs it, on a free loopback port; with TRUSTED_PROXIES=trusted."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "AUTH_MODE": "accounts",
           "SECRET_KEY": "proxy-test", "TRUSTED_PROXIES": str(trusted), "BIND": f"127.0.0.1:{port}",
           "WEB_THREADS": "2", "MEDIA_ROOT": str(tmp_path / "media"), "PYTHONUNBUFFERED": "1"}
    command = [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:app.gunicorn_config", "wsgi:app"]
    return ProcessGroup("web", command, env=env, cwd=ROOT, log=tmp_path / "web.log"), f"http://127.0.0.1:{port}"


def http_sign_in(base_url: str, email: str, password: str, forwarded_for: str) -> requests.Response:
    """A browser's sign-in through a proxy that says it came over HTTPS from forwarded_for."""
    session = requests.Session()
    session.headers.update({"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https",
                            "Referer": base_url.replace("http://", "https://") + "/login"})
    token = CSRF.search(session.get(base_url + "/login", timeout=30).text).group(1)
    return session.post(base_url + "/login", data={"csrf_token": token, "email": email, "password": password},
                        allow_redirects=False, timeout=30)


def device_cookie_header(response: requests.Response) -> str:
    """The Set-Cookie line of the device cookie."""
    return next(h for h in response.raw.headers.getlist("Set-Cookie") if h.startswith(devices.COOKIE_NAME + "="))


@pytest.mark.parametrize("trusted", [0, 1])
def test_gunicorn_believes_forwarded_headers_only_with_the_setting(make_app, migrated, redis_url, tmp_path, trusted):
    app = make_app(AUTH_MODE="accounts")
    for n in range(6):
        make_user(app, f"user{n}@example.com")
    web, base_url = gunicorn(tmp_path, migrated, redis_url, trusted)
    with web.start():
        web.wait_until(http_ok(base_url + "/healthz"), "gunicorn")
        signed_in = http_sign_in(base_url, "user5@example.com", PASSWORD, "198.51.100.3")
        assert signed_in.status_code == 303
        # The scheme is https only when the setting believes the proxy (gunicorn's own default would believe
        # X-Forwarded-Proto from any client on 127.0.0.1).
        assert ("Secure" in device_cookie_header(signed_in)) == bool(trusted)
        # Four wrong passwords for each of five accounts: twenty failures from one client, no account spent.
        statuses = [http_sign_in(base_url, f"user{i // 4}@example.com", "wrong", "198.51.100.1").status_code
                    for i in range(21)]
        assert statuses == [401] * 20 + [429]
        other = http_sign_in(base_url, "user5@example.com", "wrong", "198.51.100.2")
        assert other.status_code == (401 if trusted else 429)  # its own budget, or everyone's on 127.0.0.1
