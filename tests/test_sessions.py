"""Server-side sessions: a copied cookie dies with its session, the account page's list, timeouts on a clock."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_token, make_user
from tests_support import PASSWORD, bearer, csrf_for, sign_in
from werkzeug.routing import IntegerConverter

from app.accounts import sessions
from app.accounts.auth import OPEN_ENDPOINTS
from app.accounts.sessions import device_of
from app.accounts.users import require_user
from app.config import Config, ConfigError
from app.extensions import db
from app.models import ApiToken, User, UserSession, utcnow

FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


class Clock:
    """The sessions' clock, moved on by the test instead of slept through."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(sessions, "utcnow", clock)
    return clock


@pytest.fixture
def app(make_app):
    """Accounts mode with short timeouts, so the clock has little to move: 30 minutes idle, 3 hours in all."""
    return make_app(AUTH_MODE="accounts", SESSION_IDLE_MINUTES=30, SESSION_LIFETIME_HOURS=3)


def browser(app, email="ann@example.com", user_agent=FIREFOX, address="192.0.2.10"):
    """A client signed in from its own device and address; returns it with its CSRF token."""
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": address})
    sign_in(client, email)
    return client, csrf_for(client)


def copy_of(app, client, user_agent="curl/8.5.0", address="203.0.113.66"):
    """Another client carrying the same session cookie, from another address and User-Agent."""
    copy = app.test_client()
    copy.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": address})
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


def refused(response, path):
    """The sign-in wall's answer: 401 for the API, the sign-in redirect for a page."""
    if path.startswith("/api/"):
        return response.status_code == 401 and response.is_json
    return response.status_code in (302, 303) and response.headers["Location"].startswith("/login")


def sign_out(client, token):
    return client.post("/logout", data={"csrf_token": token})


def live_sessions(app, email="ann@example.com"):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)
                                 .join(User).where(User.email == email))


# --- a copied cookie, on every route ----------------------------------------------------------------

def every_route(app, ids):
    """(method, path) of every route the app serves behind the sign-in wall, its ids those of real rows."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN_ENDPOINTS:
            continue
        values = {name: ids.get(name, 1) if isinstance(rule._converters.get(name), IntegerConverter) else "x"
                  for name in rule.arguments - set(rule.defaults or ())}
        path = rule.build(values, append_unknown=False)[1]
        routes += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


@pytest.fixture
def admins_world(app):
    """An admin (who may reach every page, the dashboard too) with a finished batch, a token and a session."""
    make_user(app, "ann@example.com", admin=True)
    batch_id, (generation_id,) = make_batch(app, "a lighthouse", owner_email="ann@example.com")
    drain(app)
    make_token(app, "ann@example.com")
    with app.app_context():
        user = require_user("ann@example.com")
        token_id = db.session.scalar(sa.select(ApiToken.id).where(ApiToken.user_id == user.id))
    return {"batch_id": batch_id, "generation_id": generation_id, "token_id": token_id, "user_id": user.id}


def test_a_copied_cookie_is_refused_on_every_route_once_its_session_signs_out(app, admins_world):
    client, token = browser(app)
    copy = copy_of(app, client)
    routes = every_route(app, {**admins_world, "session_id": sessions_of(app)[0].id})
    paths = {path for _, path in routes}
    assert len(routes) > 40 and any(p.startswith("/api/") for p in paths) and any(p.startswith("/rq/") for p in paths)
    for method, path in routes:  # first the copy works: it is the admin's own live session
        if method == "GET":
            response = copy.get(path)
            response.close()
            assert not refused(response, path), path
    assert sign_out(client, token).status_code == 303
    for method, path in routes:
        response = copy.open(path, method=method, headers={"X-CSRFToken": token})
        response.close()
        assert refused(response, path), (method, path, response.status_code)
    assert live_sessions(app) == 0


def test_the_copy_is_refused_on_the_api_as_json_and_the_poll_as_a_redirect(app, admins_world):
    client, token = browser(app)
    copy = copy_of(app, client)
    assert copy.get("/api/me").status_code == 200
    sign_out(client, token)
    api = copy.get("/api/me")
    assert api.status_code == 401 and api.json["error"]["code"] == "unauthorized"
    poll = copy.get(f"/generate/{admins_world['batch_id']}/status?seen=x", headers={"HX-Request": "true"})
    assert poll.status_code == 401 and poll.headers["HX-Redirect"].startswith("/login")


def test_signing_out_leaves_api_tokens_working(app):
    make_user(app, "ann@example.com")
    secret = make_token(app, "ann@example.com")
    client, token = browser(app)
    sign_out(client, token)
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 200


# --- the account page's list ------------------------------------------------------------------------

def sessions_of(app, email="ann@example.com"):
    with app.app_context():
        return sessions.of_user(require_user(email))


def test_the_account_page_lists_each_session_with_its_device_address_and_last_use(app):
    make_user(app, "ann@example.com")
    laptop, _ = browser(app, user_agent=FIREFOX, address="192.0.2.10")
    browser(app, user_agent=IPHONE, address="198.51.100.7")
    page = laptop.get("/account").get_data(as_text=True)
    assert "Firefox 128 on Ubuntu" in page and "192.0.2.10" in page
    assert "Mobile Safari 17 on iOS 17" in page and "198.51.100.7" in page
    assert page.count("This browser") == 1 and page.count("<time datetime=") == 4
    assert "Sign out everywhere else" in page


def test_sign_out_everywhere_else_ends_every_other_session_within_the_request(app):
    make_user(app, "ann@example.com")
    make_user(app, "bob@example.com")
    here, token = browser(app)
    others = [browser(app, address=f"198.51.100.{n}")[0] for n in range(3)]
    copies = [copy_of(app, other) for other in others]
    bob, _ = browser(app, "bob@example.com")
    response = here.post("/account/sessions/end-others", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/account#sessions"
    assert "Signed out 3 other sessions." in here.get("/account").get_data(as_text=True)
    for other in others + copies:
        assert refused(other.get("/all/"), "/all/") and refused(other.get("/api/me"), "/api/me")
    assert here.get("/all/").status_code == 200 and bob.get("/all/").status_code == 200
    assert [s.address for s in sessions_of(app)] == ["192.0.2.10"]


def test_one_session_is_signed_out_from_the_list_and_someone_elses_is_a_404(app):
    make_user(app, "ann@example.com")
    make_user(app, "bob@example.com")
    here, token = browser(app)
    phone, _ = browser(app, user_agent=IPHONE, address="198.51.100.7")
    bob, _ = browser(app, "bob@example.com")
    phone_id = next(s.id for s in sessions_of(app) if s.address == "198.51.100.7")
    bobs_id = sessions_of(app, "bob@example.com")[0].id
    assert here.post(f"/account/sessions/{bobs_id}/end", data={"csrf_token": token}).status_code == 404
    assert bob.get("/all/").status_code == 200
    assert here.post(f"/account/sessions/{phone_id}/end", data={"csrf_token": token}).status_code == 303
    assert refused(phone.get("/all/"), "/all/") and here.get("/all/").status_code == 200
    this_id = sessions_of(app)[0].id
    ending_this = here.post(f"/account/sessions/{this_id}/end", data={"csrf_token": token})
    assert refused(ending_this, "/account") and refused(here.get("/all/"), "/all/")


def test_session_actions_need_the_csrf_token(app):
    make_user(app, "ann@example.com")
    here, _ = browser(app)
    browser(app, address="198.51.100.7")
    assert here.post("/account/sessions/end-others").status_code == 400
    assert live_sessions(app) == 2


# --- timeouts, on a clock the test moves ------------------------------------------------------------

def test_a_session_idle_past_the_timeout_is_refused_and_deleted(app, clock):
    make_user(app, "ann@example.com")
    client, _ = browser(app)
    clock.advance(minutes=29)
    assert client.get("/all/").status_code == 200  # in use: the idle time starts again
    clock.advance(minutes=29)
    assert client.get("/api/me").status_code == 200
    clock.advance(minutes=30)
    assert refused(client.get("/all/"), "/all/")
    assert live_sessions(app) == 0


def test_a_busy_session_still_ends_at_its_absolute_lifetime(app, clock):
    make_user(app, "ann@example.com")
    client, _ = browser(app)
    for _ in range(11):  # 2 h 45 min of requests every quarter hour
        clock.advance(minutes=15)
        assert client.get("/all/").status_code == 200
    clock.advance(minutes=15)
    assert refused(client.get("/all/"), "/all/") and refused(client.get("/api/me"), "/api/me")


def test_last_seen_is_written_at_most_once_a_minute(app, clock):
    make_user(app, "ann@example.com")
    client, _ = browser(app)
    signed_in_at = sessions_of(app)[0].last_seen_at
    clock.advance(seconds=30)
    client.get("/all/")
    assert sessions_of(app)[0].last_seen_at == signed_in_at
    clock.advance(seconds=40)
    client.get("/all/")
    assert sessions_of(app)[0].last_seen_at == clock.now


def test_the_generate_poll_keeps_a_session_alive_and_obeys_the_timeout(app, clock):
    make_user(app, "ann@example.com")
    batch_id, _ = make_batch(app, "a lighthouse", owner_email="ann@example.com")
    client, _ = browser(app)
    url = f"/generate/{batch_id}/status?seen=x"
    for _ in range(4):  # the page polling for an hour and a half keeps it alive: each poll counts as use
        clock.advance(minutes=25)
        assert client.get(url).status_code == 200
    clock.advance(minutes=31)
    assert refused(client.get(url), url)


def test_sessions_past_their_time_are_swept_at_the_next_sign_in(app, clock):
    make_user(app, "ann@example.com")
    make_user(app, "bob@example.com")
    browser(app)
    clock.advance(hours=1)
    browser(app, "bob@example.com")
    assert live_sessions(app, "ann@example.com") == 0 and live_sessions(app, "bob@example.com") == 1


# --- tokens and account changes ---------------------------------------------------------------------

def change_password(client, token, **extra):
    return client.post("/account", data={"csrf_token": token, "current": PASSWORD, "password": "a brand new secret",
                                         "confirm": "a brand new secret", **extra})


def test_a_password_change_offers_to_revoke_the_api_tokens_ticked_by_default(app):
    make_user(app, "ann@example.com")
    secret = make_token(app, "ann@example.com")
    client, token = browser(app)
    box = re.search(r'<input[^>]*name="revoke_tokens"[^>]*>', client.get("/account").get_data(as_text=True))
    assert 'type="checkbox"' in box.group(0) and "checked" in box.group(0)
    assert change_password(client, token, revoke_tokens="y").status_code == 303
    assert "and 1 API token revoked" in client.get("/account").get_data(as_text=True)
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 401


def test_a_password_change_with_the_box_unticked_keeps_the_tokens(app):
    make_user(app, "ann@example.com")
    secret = make_token(app, "ann@example.com")
    client, token = browser(app)
    elsewhere, _ = browser(app, address="198.51.100.7")
    assert change_password(client, token).status_code == 303  # an unticked box is not sent at all
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 200
    assert refused(elsewhere.get("/all/"), "/all/") and client.get("/all/").status_code == 200
    assert live_sessions(app) == 1


def test_re_enabling_an_account_revokes_the_tokens_it_had_and_says_so(app):
    make_user(app, "boss@example.com", admin=True)
    ann = make_user(app, "ann@example.com")
    secret = make_token(app, "ann@example.com")
    annes_browser, _ = browser(app)
    admin, token = browser(app, "boss@example.com")
    admin.post(f"/admin/users/{ann}/disable", data={"csrf_token": token})
    assert refused(annes_browser.get("/all/"), "/all/") and live_sessions(app) == 0
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 401
    admin.post(f"/admin/users/{ann}/disable", data={"csrf_token": token, "enable": "1"})
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "ann@example.com is enabled; its 1 API token from before it was disabled was revoked" in page
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 401
    browser(app)  # she signs in again and makes a new token, which works
    assert app.test_client().get("/api/me", headers=bearer(make_token(app, "ann@example.com", "new"))).status_code \
        == 200


def test_flask_users_enable_says_what_became_of_the_tokens(app):
    make_user(app, "ann@example.com")
    make_token(app, "ann@example.com", "one")
    make_token(app, "ann@example.com", "two")
    runner = app.test_cli_runner()
    assert "is enabled already" in runner.invoke(args=["users", "enable", "ann@example.com"]).output
    runner.invoke(args=["users", "disable", "ann@example.com"])
    result = runner.invoke(args=["users", "enable", "ann@example.com"])
    assert result.exit_code == 0 and "its 2 API tokens from before it was disabled were revoked" in result.output
    result = runner.invoke(args=["users", "enable", "ann@example.com"])
    assert "is enabled already" in result.output


# --- the local run and the device names -------------------------------------------------------------

def test_without_accounts_there_are_no_sessions_to_list_or_end(make_app):
    app = make_app()
    client = app.test_client()
    assert client.get("/").status_code == 200
    page = client.get("/account").get_data(as_text=True)
    assert "Where you are signed in" not in page
    assert client.post("/account/sessions/end-others", data={"csrf_token": csrf_for(client)}).status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0


@pytest.mark.parametrize(("user_agent", "device"), [
    (FIREFOX, "Firefox 128 on Ubuntu"),
    (IPHONE, "Mobile Safari 17 on iOS 17"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
     "Safari/537.36", "Chrome 131 on Windows 10"),
    ("python-requests/2.32.3", "Python Requests 2"),
    ("", "Unknown device"),
    ("x" * 100_000, "x" * 120),
])
def test_devices_are_named_from_the_user_agent(user_agent, device):
    assert device_of(user_agent) == device


@pytest.mark.parametrize(("name", "value", "message"), [
    ("SESSION_IDLE_MINUTES", "0", "SESSION_IDLE_MINUTES must be an integer of at least 1"),
    ("SESSION_IDLE_MINUTES", "half an hour", "SESSION_IDLE_MINUTES must be an integer"),
    ("SESSION_LIFETIME_HOURS", "0", "SESSION_LIFETIME_HOURS must be a number above 0"),
])
def test_the_timeouts_are_settings_checked_at_start_up(monkeypatch, tmp_path, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Config(str(tmp_path))


def test_the_timeouts_default_to_two_idle_hours_within_a_day(monkeypatch, tmp_path):
    monkeypatch.delenv("SESSION_IDLE_MINUTES", raising=False)
    monkeypatch.delenv("SESSION_LIFETIME_HOURS", raising=False)
    config = Config(str(tmp_path))
    assert (config.SESSION_IDLE_MINUTES, config.SESSION_LIFETIME_HOURS) == (120, 24.0)
