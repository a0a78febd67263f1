"""New accounts' allowance: a number, no cap ('none' in the CLI), or DEFAULT_MONTHLY_CREDITS when none is given."""

import pytest
from factories import make_user
from tests_support import PASSWORD, csrf_for, sign_in

from app.accounts.users import find_user, local_user


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
        args=["users", "create", "someone@example.com", "--password", PASSWORD, *option])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert find_user("someone@example.com").monthly_credits == expected


@pytest.mark.parametrize(("typed", "expected"), [("", 50.0), ("12", 12.0)])
def test_the_admin_page_gives_the_default_when_the_allowance_is_left_empty(app, typed, expected):
    make_user(app, "admin@example.com", admin=True)
    client = app.test_client()
    sign_in(client, "admin@example.com")
    response = client.post("/admin/users", data={"csrf_token": csrf_for(client), "email": "new@example.com",
                                                 "monthly_credits": typed})
    assert response.status_code == 201
    with app.app_context():
        assert find_user("new@example.com").monthly_credits == expected


def test_the_local_user_has_no_allowance_whatever_the_default(app):
    with app.app_context():
        assert local_user().monthly_credits is None
