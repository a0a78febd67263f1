"""New accounts' allowance: a number, no cap ('none' in the CLI), or DEFAULT_MONTHLY_CREDITS when none is given."""

import re

import pytest

from app.accounts.users import create_user, find_user, local_user

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app(make_app):
    """Accounts mode with a default allowance, so 'no cap' and 'the default' differ."""
    return make_app(AUTH_MODE="accounts", DEFAULT_MONTHLY_CREDITS=50.0)


@pytest.mark.parametrize(("option", "expected"), [
    (["--monthly-credits", "none"], None),
    (["--monthly-credits", "unlimited"], None),
    (["--monthly-credits", "7"], 7.0),
    ([], 50.0),
])
def test_flask_users_create_takes_the_allowance_asked_for(app, option, expected):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "someone@example.com", "--password", "a-long-password", *option])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert find_user("someone@example.com").monthly_credits == expected


def signed_in_admin(app):
    """A test client signed in through /login as a fresh admin."""
    with app.app_context():
        create_user("admin@example.com", password="admin-password", is_admin=True, monthly_credits=None)
    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"csrf_token": token, "email": "admin@example.com",
                                           "password": "admin-password"})
    assert response.status_code == 303
    return client, token


@pytest.mark.parametrize(("typed", "expected"), [("", 50.0), ("12", 12.0)])
def test_the_admin_page_gives_the_default_when_the_allowance_is_left_empty(app, typed, expected):
    client, token = signed_in_admin(app)
    response = client.post("/admin/users", data={"csrf_token": token, "email": "new@example.com",
                                                 "monthly_credits": typed})
    assert response.status_code == 201
    with app.app_context():
        assert find_user("new@example.com").monthly_credits == expected


def test_the_local_user_has_no_allowance_whatever_the_default(app):
    with app.app_context():
        assert local_user().monthly_credits is None
