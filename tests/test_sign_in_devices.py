"""A lockout nobody can aim: known browsers keep their own sign-in budget; everyone else shares the account's."""

from __future__ import annotations

import re
import time
from functools import partial

from factories import make_user
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from tests_support import PASSWORD, csrf_for, sign_in

from app.accounts import devices

# Sign-in attempts whose status the tests read themselves.
attempt_sign_in = partial(sign_in, expect=None)

ADDRESSES = [f"203.0.113.{n}" for n in range(1, 6)]
LOCKED = re.compile(r"Too many attempts; try again in 1[456] minutes")


def browser(app, address: str = "192.0.2.10"):
    """A test client that connects from this address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def known_browser(app, email: str, address: str = "192.0.2.10"):
    """A browser that has signed in to this account once, then signed out (keeping its device cookie)."""
    client = browser(app, address)
    assert attempt_sign_in(client, email, PASSWORD).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_for(client)})
    assert client.get("/").status_code == 302  # signed out
    return client


def guesses(app, email: str, count: int) -> list[int]:
    """Wrong passwords for the account from fresh browsers (no cookies), spread over several addresses."""
    return [attempt_sign_in(browser(app, ADDRESSES[i % len(ADDRESSES)]), email, f"guess {i}").status_code
            for i in range(count)]


def device_cookie(client) -> str:
    cookie = client.get_cookie(devices.COOKIE_NAME, path=devices.COOKIE_PATH)
    assert cookie is not None, "no device cookie"
    return cookie.value


def test_a_hundred_guesses_from_many_addresses_leave_the_owner_in_from_a_known_browser(accounts_app):
    make_user(accounts_app, "ann@example.com")
    owners_laptop = known_browser(accounts_app, "ann@example.com")
    statuses = guesses(accounts_app, "ann@example.com", 100)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # the attacker is throttled per account
    # Without a device cookie even the right password waits, whatever address it comes from.
    stranger = attempt_sign_in(browser(accounts_app, "198.51.100.77"), "ann@example.com", PASSWORD)
    assert stranger.status_code == 429
    assert "A browser you have signed in with before can still sign in now." in stranger.get_data(as_text=True)
    # The owner's browser signs in at once, even from one of the attacker's addresses (a shared NAT).
    owners_laptop.environ_base["REMOTE_ADDR"] = ADDRESSES[0]
    assert attempt_sign_in(owners_laptop, "ann@example.com", PASSWORD).status_code == 303
    assert owners_laptop.get("/").status_code == 200


def test_a_known_browser_is_not_held_back_by_its_addresss_budget(accounts_app):
    make_user(accounts_app, "ann@example.com")
    laptop = known_browser(accounts_app, "ann@example.com", address=ADDRESSES[0])
    sprayed = [attempt_sign_in(browser(accounts_app, ADDRESSES[0]), f"user{i}@example.com", "x").status_code
               for i in range(21)]
    assert sprayed[:20] == [401] * 20 and sprayed[20] == 429  # the address is spent for unknown browsers
    assert attempt_sign_in(laptop, "ann@example.com", PASSWORD).status_code == 303


def test_a_known_browser_has_a_budget_of_its_own(accounts_app):
    make_user(accounts_app, "ann@example.com")
    laptop, phone = known_browser(accounts_app, "ann@example.com"), known_browser(accounts_app, "ann@example.com")
    assert [attempt_sign_in(laptop, "ann@example.com", f"typo {i}").status_code for i in range(5)] == [401] * 5
    blocked = attempt_sign_in(laptop, "ann@example.com", PASSWORD)
    assert blocked.status_code == 429 and LOCKED.search(blocked.get_data(as_text=True))
    assert "A browser you have signed in with before" not in blocked.get_data(as_text=True)
    # The laptop's failures spent neither the phone's budget nor the one shared by unknown browsers.
    assert attempt_sign_in(phone, "ann@example.com", PASSWORD).status_code == 303
    assert attempt_sign_in(browser(accounts_app), "ann@example.com", PASSWORD).status_code == 303


def test_a_browser_is_known_only_for_the_accounts_signed_in_on_it(accounts_app):
    make_user(accounts_app, "ann@example.com")
    make_user(accounts_app, "mallory@example.com")
    # Mallory signs in to her own account: her browser's cookie does not vouch for ann's.
    mallorys = known_browser(accounts_app, "mallory@example.com")
    assert guesses(accounts_app, "ann@example.com", 5) == [401] * 5
    assert attempt_sign_in(mallorys, "ann@example.com", PASSWORD).status_code == 429


def test_one_browser_is_known_for_each_account_signed_in_on_it(accounts_app):
    make_user(accounts_app, "ann@example.com")
    make_user(accounts_app, "bob@example.com")
    shared = known_browser(accounts_app, "ann@example.com")
    assert attempt_sign_in(shared, "bob@example.com", PASSWORD).status_code == 303
    shared.post("/logout", data={"csrf_token": csrf_for(shared)})
    for email in ("ann@example.com", "bob@example.com"):
        assert guesses(accounts_app, email, 6)[-1] == 429
    for email in ("ann@example.com", "bob@example.com"):
        assert attempt_sign_in(shared, email, PASSWORD).status_code == 303
        shared.post("/logout", data={"csrf_token": csrf_for(shared)})


def test_a_forged_tampered_or_expired_device_cookie_counts_for_nothing(accounts_app, monkeypatch):
    user_id = make_user(accounts_app, "ann@example.com")
    genuine = device_cookie(known_browser(accounts_app, "ann@example.com"))
    assert guesses(accounts_app, "ann@example.com", 5) == [401] * 5
    payload = {"d": "attacker", "a": [user_id]}
    with accounts_app.app_context():
        wrong_key = URLSafeTimedSerializer("not the secret", salt=devices.SALT).dumps(payload)
        other_salt = URLSafeTimedSerializer(accounts_app.secret_key, salt="other").dumps(payload)
        year_ago = int(time.time()) - devices.MAX_AGE_SECONDS - 60
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: year_ago)
        expired = URLSafeTimedSerializer(accounts_app.secret_key, salt=devices.SALT).dumps(payload)
        monkeypatch.undo()
    tampered = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    for value in (wrong_key, other_salt, expired, tampered, "garbage"):
        client = browser(accounts_app)
        client.set_cookie(devices.COOKIE_NAME, value, path=devices.COOKIE_PATH)
        assert attempt_sign_in(client, "ann@example.com", PASSWORD).status_code == 429, value


def test_the_device_cookie_is_signed_httponly_lax_for_the_sign_in_page_and_lasts_a_year(accounts_app):
    user_id = make_user(accounts_app, "ann@example.com")
    response = attempt_sign_in(browser(accounts_app), "ann@example.com", PASSWORD)
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(devices.COOKIE_NAME + "="))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/login" in header
    assert f"Max-Age={devices.MAX_AGE_SECONDS}" in header and "Secure" not in header  # plain http, no setting
    value = header.split(";")[0].split("=", 1)[1]
    with accounts_app.app_context():
        data = URLSafeTimedSerializer(accounts_app.secret_key, salt=devices.SALT).loads(value)
    assert len(data["d"]) >= 20 and data["a"] == [user_id]  # a random device id, and the account's id


def test_with_secure_cookies_the_device_cookie_is_secure_too(make_app):
    app = make_app(AUTH_MODE="accounts", SESSION_COOKIE_SECURE=True)
    make_user(app, "ann@example.com")
    response = attempt_sign_in(browser(app), "ann@example.com", PASSWORD)
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(devices.COOKIE_NAME + "="))
    assert "Secure" in header


def test_signing_in_again_keeps_the_device_id_and_the_other_accounts(accounts_app):
    ann, bob = make_user(accounts_app, "ann@example.com"), make_user(accounts_app, "bob@example.com")
    client = known_browser(accounts_app, "ann@example.com")
    first = device_cookie(client)
    attempt_sign_in(client, "bob@example.com", PASSWORD)
    with accounts_app.app_context():
        serializer = URLSafeTimedSerializer(accounts_app.secret_key, salt=devices.SALT)
        before, after = serializer.loads(first), serializer.loads(device_cookie(client))
    assert after["d"] == before["d"] and after["a"] == [ann, bob]


def test_a_browser_remembers_at_most_the_last_ten_accounts(accounts_app):
    ids = [make_user(accounts_app, f"user{i}@example.com") for i in range(devices.MAX_ACCOUNTS + 2)]
    client = browser(accounts_app)
    for i in range(len(ids)):
        assert attempt_sign_in(client, f"user{i}@example.com", PASSWORD).status_code == 303
        client.post("/logout", data={"csrf_token": csrf_for(client)})
    with accounts_app.app_context():
        data = URLSafeTimedSerializer(accounts_app.secret_key, salt=devices.SALT).loads(device_cookie(client))
    assert data["a"] == ids[-devices.MAX_ACCOUNTS:]


def test_setting_a_password_from_a_link_makes_the_browser_known(accounts_app):
    from app.accounts.users import create_user, password_link

    with accounts_app.test_request_context():
        link = password_link(create_user("new@example.com"), external=False)
    client = browser(accounts_app)
    data = {"csrf_token": csrf_for(client, link), "password": PASSWORD, "confirm": PASSWORD}
    assert client.post(link, data=data).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_for(client)})
    assert guesses(accounts_app, "new@example.com", 5) == [401] * 5
    assert attempt_sign_in(client, "new@example.com", PASSWORD).status_code == 303
