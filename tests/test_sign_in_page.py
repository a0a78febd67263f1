"""The sign-in page as an anonymous visitor sees it: no links into the wall, an honest wait when throttled."""

import re

import pytest

from app.accounts.users import create_user

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app(make_app):
    app = make_app(AUTH_MODE="accounts")
    with app.app_context():
        create_user("ada@example.com", password="ada-password", monthly_credits=None)
    return app


def sign_in(client, password):
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    return client.post("/login", data={"csrf_token": token, "email": "ada@example.com", "password": password})


def test_signed_out_the_header_links_to_no_page_behind_the_sign_in(app):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/all/"' not in page and "New batch" not in page
    assert sign_in(client, "ada-password").status_code == 303
    assert 'href="/all/"' in client.get("/").get_data(as_text=True)


def test_too_many_failures_name_the_15_minute_window_not_16(app):
    client = app.test_client()
    assert [sign_in(client, "wrong-password").status_code for _ in range(5)] == [401] * 5
    throttled = sign_in(client, "wrong-password")
    assert throttled.status_code == 429
    assert "Too many attempts; try again in 15 minutes." in throttled.get_data(as_text=True)
