"""Signing in and out, the sign-in page and wall, next validation, throttling, disabled accounts, links and the
CLI."""


import pytest
from factories import make_images, make_user
from tests_support import PASSWORD, csrf_for, sign_in

from app.accounts.users import create_user, find_user, local_user, password_link, set_monthly_credits
from app.extensions import db
from app.generations import spending
from app.models import Batch, Generation, User


def test_a_fresh_install_without_an_admin_explains_the_one_command(accounts_app):
    html = accounts_app.test_client().get("/login").get_data(as_text=True)
    assert "flask users create you@example.com --admin" in html


@pytest.mark.parametrize("path", ["/", "/all/", "/generate/1", "/images/1", "/account", "/admin/users"])
def test_anonymous_browsers_are_sent_to_sign_in_with_next(accounts_app, path):
    response = accounts_app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_json_endpoints_answer_401_with_a_json_body(accounts_app):
    response = accounts_app.test_client().get("/api/batches/1")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_htmx_requests_are_sent_to_sign_in_with_a_full_page_redirect(accounts_app):
    response = accounts_app.test_client().get("/generate/1/status", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login?next=")


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/css/app.css"])
def test_sign_in_health_and_static_files_need_no_session(accounts_app, path):
    response = accounts_app.test_client().get(path)
    response.close()
    assert response.status_code in (200, 503)


def test_signed_out_the_header_links_to_no_page_behind_the_sign_in(accounts_app):
    make_user(accounts_app, "ada@example.com")
    client = accounts_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/all/"' not in page and "New batch" not in page
    sign_in(client, "ada@example.com")
    assert 'href="/all/"' in client.get("/").get_data(as_text=True)


def test_signing_in_goes_to_a_next_path_on_this_site(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    response = sign_in(client, "Ann@Example.com ", next_path="/all/?q=cat")
    assert response.status_code == 303 and response.headers["Location"] == "/all/?q=cat"
    assert client.get("/all/").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x",
                                    "http:/evil.example", "%2F%2Fevil.example"])
def test_next_never_leaves_the_site(accounts_app, target):
    make_user(accounts_app, "ann@example.com")
    response = sign_in(accounts_app.test_client(), "ann@example.com", next_path=target)
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(accounts_app):
    make_user(accounts_app, "ann@example.com")
    wrong = sign_in(accounts_app.test_client(), "ann@example.com", "not the password", expect=401)
    unknown = sign_in(accounts_app.test_client(), "bob@example.com", "not the password", expect=401)
    for response in (wrong, unknown):
        assert "Wrong email or password." in response.get_data(as_text=True)
    assert 'value="ann@example.com"' in wrong.get_data(as_text=True)  # what was typed stays


def test_five_failures_for_one_account_are_throttled_with_a_readable_wait(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    statuses = [sign_in(client, "ann@example.com", f"wrong {i}", expect=None).status_code for i in range(5)]
    assert statuses == [401] * 5
    blocked = sign_in(client, "ann@example.com", expect=429)  # even the right password waits now
    # A fresh 15-minute pause, said as 15 minutes (the window's reset time, not a rounded-up 16).
    assert "Too many attempts; try again in 15 minutes." in blocked.get_data(as_text=True)
    # Another account from the same address is not blocked by ann's failures.
    make_user(accounts_app, "bob@example.com")
    sign_in(client, "bob@example.com")


def test_twenty_failures_from_one_address_are_throttled(accounts_app):
    client = accounts_app.test_client()
    statuses = [sign_in(client, f"user{i}@example.com", "wrong", expect=None).status_code for i in range(21)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429


def test_successful_sign_ins_do_not_count_as_failures(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    for _ in range(7):
        sign_in(client, "ann@example.com")
        client.post("/logout", data={"csrf_token": csrf_for(client)})


def test_signing_out_ends_the_session(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    response = client.post("/logout", data={"csrf_token": csrf_for(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_logout_needs_the_csrf_token(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_a_disabled_account_is_signed_out_and_cannot_sign_in(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    with accounts_app.app_context():
        from app.accounts.users import set_disabled

        set_disabled(find_user("ann@example.com"), True)
    assert client.get("/").status_code == 302
    sign_in(accounts_app.test_client(), "ann@example.com", expect=401)


def test_changing_the_password_ends_the_other_sessions_but_not_this_one(accounts_app):
    make_user(accounts_app, "ann@example.com")
    here, elsewhere = accounts_app.test_client(), accounts_app.test_client()
    sign_in(here, "ann@example.com")
    sign_in(elsewhere, "ann@example.com")
    response = here.post("/account", data={"csrf_token": csrf_for(here), "current": PASSWORD,
                                           "password": "a brand new secret", "confirm": "a brand new secret"})
    assert response.status_code == 303
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    sign_in(accounts_app.test_client(), "ann@example.com", "a brand new secret")


def test_single_user_mode_has_no_password_to_change(client):
    html = client.get("/account").get_data(as_text=True)
    assert "Single-user mode" in html and "Change password" not in html and 'type="password"' not in html
    response = client.post("/account", data={"csrf_token": csrf_for(client), "current": "x", "password": PASSWORD,
                                             "confirm": PASSWORD})
    assert response.status_code == 405 and "Traceback" not in response.get_data(as_text=True)


def test_a_password_link_sets_the_password_once(accounts_app):
    with accounts_app.test_request_context():
        user = create_user("new@example.com")
        link = password_link(user, external=False)
    client = accounts_app.test_client()
    form = client.get(link)
    assert form.status_code == 200 and "new@example.com" in form.get_data(as_text=True)
    token = csrf_for(client, link)
    data = {"csrf_token": token, "password": "my first password", "confirm": "my first password"}
    assert client.post(link, data=data).status_code == 303
    assert client.get("/").status_code == 200  # signed in
    assert accounts_app.test_client().get(link).status_code == 404  # used once


def test_a_tampered_link_is_refused(accounts_app):
    assert accounts_app.test_client().get("/account/password/not-a-token").status_code == 404


def test_passwords_are_stored_as_argon2_hashes(accounts_app):
    make_user(accounts_app, "ann@example.com")
    with accounts_app.app_context():
        stored = find_user("ann@example.com").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_the_session_cookie_is_httponly_and_samesite_lax(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    response = sign_in(client, "ann@example.com")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_auth_mode_none_opens_straight_onto_the_form_as_the_local_admin(client):
    html = client.get("/").get_data(as_text=True)
    assert "Generate images" in html and "Sign out" not in html


def test_rows_from_before_accounts_belong_to_the_first_admin(make_app):
    app = make_app(AUTH_MODE="accounts")
    with app.app_context():
        batch = Batch(generations=[Generation(position=0, prompt="old", provider="demo")])
        db.session.add(batch)
        db.session.commit()
        admin = create_user("first@example.com", password=PASSWORD, is_admin=True)
        create_user("second@example.com", password=PASSWORD, is_admin=True)
        assert db.session.get(Batch, batch.id).owner_id == admin.id
        assert db.session.get(Generation, batch.generations[0].id).owner_id == admin.id


def test_the_cli_creates_lists_caps_and_disables_users(accounts_app):
    runner = accounts_app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "Ann@Example.com", "--password", PASSWORD,
                                 "--monthly-credits", "20"])
    assert result.exit_code == 0 and "Created member ann@example.com" in result.output
    result = runner.invoke(args=["users", "create", "boss@example.com", "--admin"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    invite = runner.invoke(args=["users", "create", "new@example.com", "--invite"])
    assert invite.exit_code == 0 and "/account/password/" in invite.output
    assert runner.invoke(args=["users", "set-credits", "ann@example.com", "12.5"]).exit_code == 0
    listing = runner.invoke(args=["users", "list"]).output
    assert "ann@example.com\tmember\tactive\t0 of 12.5 credits" in listing
    with accounts_app.test_request_context():
        boss = find_user("boss@example.com")
        set_monthly_credits(boss, None)
        spending.reserve(boss, 160.5)
        db.session.commit()
    listing = runner.invoke(args=["users", "list"]).output
    assert "boss@example.com\tadmin\tactive\t160.5 credits (no cap)" in listing  # not "160.5 of no cap credits"
    assert "new@example.com\tmember\tinvited" in listing and "boss@example.com\tadmin" in listing
    assert runner.invoke(args=["users", "disable", "ann@example.com"]).exit_code == 0
    with accounts_app.app_context():
        assert find_user("ann@example.com").disabled


@pytest.mark.parametrize(("args", "message"), [
    (["users", "create", "not-an-email", "--password", PASSWORD], "Enter an email address"),
    (["users", "create", "a@example.com", "--password", "short"], "at least 10 characters"),
    (["users", "set-credits", "nobody@example.com", "5"], "No account has the email"),
    (["users", "set-credits", "x@example.com", "lots"], "use a number of credits"),
])
def test_the_cli_explains_what_is_wrong(accounts_app, args, message):
    make_user(accounts_app, "x@example.com")
    result = accounts_app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0 and message in result.output


def test_the_admin_page_invites_sets_credits_and_disables(accounts_app):
    make_user(accounts_app, "boss@example.com", admin=True)
    member = make_user(accounts_app, "ann@example.com", monthly_credits=20)
    client = accounts_app.test_client()
    sign_in(client, "boss@example.com")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "ann@example.com" in page and "boss@example.com" in page
    token = csrf_for(client, "/admin/users")
    created = client.post("/admin/users", data={"csrf_token": token, "email": "new@example.com"})
    assert created.status_code == 201 and "/account/password/" in created.get_data(as_text=True)
    client.post(f"/admin/users/{member}/credits", data={"csrf_token": token, "monthly_credits": "7"})
    client.post(f"/admin/users/{member}/disable", data={"csrf_token": token})
    with accounts_app.app_context():
        ann = db.session.get(User, member)
        assert (ann.monthly_credits, ann.disabled) == (7, True)
    reset = client.post(f"/admin/users/{member}/reset", data={"csrf_token": token})
    assert "/account/password/" in reset.get_data(as_text=True)


def test_members_cannot_reach_the_admin_page_or_the_dashboard(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    assert client.get("/admin/users").status_code == 404
    assert client.get("/rq/").status_code == 404
    response = client.post("/admin/users", data={"csrf_token": csrf_for(client), "email": "x@example.com"})
    assert response.status_code == 404


def test_admins_open_the_dashboard_without_basic_auth_and_its_posts_need_same_origin(accounts_app):
    make_user(accounts_app, "boss@example.com", admin=True)
    client = accounts_app.test_client()
    sign_in(client, "boss@example.com")
    assert client.get("/rq/").status_code == 200
    response = client.post("/rq/queue/generations/queued/empty", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_the_local_user_has_no_allowance_and_sees_everything(app):
    with app.app_context():
        user = local_user()
        assert not user.is_admin and user.monthly_credits is None
    make_images(app, "a cat")
    assert "a cat" in app.test_client().get("/all/").get_data(as_text=True)
