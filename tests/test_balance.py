"""The Stability balance is the install's account: admins see it, members see their own allowance instead."""

from __future__ import annotations

import pytest
from conftest import API_KEY
from factories import make_user
from tests_support import sign_in


@pytest.fixture
def paid_app(make_app, fake):
    """Accounts mode with a Stability key (the fake API, holding 10,000 credits)."""
    return make_app(AUTH_MODE="accounts", STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url)


def balance_asked(fake) -> int:
    return [request.path for request in fake.requests].count("/v1/user/balance")


@pytest.mark.parametrize(("credits", "allowance"), [
    (20, "You have 20 of 20 credits left this month."),
    (None, "No monthly limit on your account; 0 credits used this month."),
])
def test_a_member_sees_their_allowance_and_never_the_stability_balance(paid_app, fake, credits, allowance):
    make_user(paid_app, "ann@example.com", monthly_credits=credits)
    client = paid_app.test_client()
    sign_in(client, "ann@example.com")
    page = client.get("/").get_data(as_text=True)
    assert allowance in page and 'hx-get="/balance"' not in page and "Stability balance" not in page
    fragment = client.get("/balance")
    assert fragment.status_code == 200
    text = fragment.get_data(as_text=True)
    assert allowance in text and "Stability balance" not in text and "10000" not in text
    assert balance_asked(fake) == 0  # not even fetched on a member's behalf


def test_an_admin_sees_the_stability_balance(paid_app, fake):
    make_user(paid_app, "boss@example.com", admin=True)
    client = paid_app.test_client()
    sign_in(client, "boss@example.com")
    assert 'hx-get="/balance"' in client.get("/").get_data(as_text=True)
    text = client.get("/balance").get_data(as_text=True)
    assert "Your Stability balance: <strong>10000.00 credits</strong>" in text
    assert balance_asked(fake) == 1
