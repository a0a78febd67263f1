"""Personal access tokens: made on /account/tokens or with `flask tokens`, shown once, stored as a hash, revocable."""

import hashlib
import re
from datetime import timedelta

import sqlalchemy as sa
from factories import make_token, make_user
from tests_support import bearer, csrf_for, sign_in

from app.extensions import db
from app.models import ApiToken, utcnow

SECRET = re.compile(r"igk_[A-Za-z0-9_-]{43}")


def make_on_page(client, name="laptop", expires_days=""):
    token = csrf_for(client, "/account/tokens")
    return client.post("/account/tokens", data={"csrf_token": token, "name": name, "expires_days": expires_days})


def rows(app):
    with app.app_context():
        return list(db.session.scalars(sa.select(ApiToken)))


def test_a_token_made_on_the_page_is_shown_once_and_only_its_hash_is_stored(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    response = make_on_page(client)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    secret = SECRET.search(response.get_data(as_text=True)).group()
    assert 'name="name" type="text" value=""' in response.get_data(as_text=True)  # the form is ready for another
    again = client.get("/account/tokens").get_data(as_text=True)
    assert secret not in again and secret[:12] + "…" in again and "laptop" in again
    (row,) = rows(accounts_app)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr([getattr(row, column.key) for column in ApiToken.__table__.columns])
    assert client.get("/api/me", headers=bearer(secret)).get_json()["email"] == "ann@example.com"


def test_the_page_refuses_an_empty_or_taken_name_next_to_the_field(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    assert make_on_page(client, name="  ").status_code == 422
    make_on_page(client, name="ci")
    taken = make_on_page(client, name="ci")
    assert taken.status_code == 422 and "already have a token named" in taken.get_data(as_text=True)
    assert "whole number of days" in make_on_page(client, name="x", expires_days="soon").get_data(as_text=True)


def test_last_use_is_recorded_at_most_once_a_minute(accounts_app):
    make_user(accounts_app, "ann@example.com")
    secret = make_token(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    assert rows(accounts_app)[0].last_used_at is None
    client.get("/api/me", headers=bearer(secret))
    first = rows(accounts_app)[0].last_used_at
    assert first is not None
    client.get("/api/me", headers=bearer(secret))
    assert rows(accounts_app)[0].last_used_at == first  # no write per request
    with accounts_app.app_context():
        db.session.execute(sa.update(ApiToken).values(last_used_at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
    client.get("/api/me", headers=bearer(secret))
    assert rows(accounts_app)[0].last_used_at > first - timedelta(seconds=1)


def test_a_revoked_token_is_refused_at_once(accounts_app):
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    secret = SECRET.search(make_on_page(client).get_data(as_text=True)).group()
    assert client.get("/api/me", headers=bearer(secret)).status_code == 200
    token_id = rows(accounts_app)[0].id
    response = client.post(f"/account/tokens/{token_id}/revoke",
                           data={"csrf_token": csrf_for(client, "/account/tokens")})
    assert response.status_code == 303
    refused = accounts_app.test_client().get("/api/me", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.get_json()["error"] == {"code": "unauthorized",
                                           "message": "This API token is unknown, expired or revoked."}
    assert "Bearer" in refused.headers["WWW-Authenticate"]
    assert "Revoked" in client.get("/account/tokens").get_data(as_text=True)


def test_someone_elses_token_cannot_be_revoked_from_my_page(accounts_app):
    make_user(accounts_app, "ann@example.com")
    make_user(accounts_app, "bob@example.com")
    secret = make_token(accounts_app, "bob@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    assert client.post(f"/account/tokens/{rows(accounts_app)[0].id}/revoke",
                       data={"csrf_token": csrf_for(client, "/account/tokens")}).status_code == 404
    assert client.get("/api/me", headers=bearer(secret)).get_json()["email"] == "bob@example.com"


def test_an_expired_token_is_refused(accounts_app):
    make_user(accounts_app, "ann@example.com")
    secret = make_token(accounts_app, "ann@example.com", expires_days=30)
    client = accounts_app.test_client()
    assert client.get("/api/me", headers=bearer(secret)).status_code == 200
    with accounts_app.app_context():
        db.session.execute(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get("/api/me", headers=bearer(secret)).status_code == 401


def test_a_disabled_account_s_tokens_stop_working(accounts_app):
    make_user(accounts_app, "ann@example.com")
    secret = make_token(accounts_app, "ann@example.com")
    runner = accounts_app.test_cli_runner()
    assert runner.invoke(args=["users", "disable", "ann@example.com"]).exit_code == 0
    assert accounts_app.test_client().get("/api/me", headers=bearer(secret)).status_code == 401


def test_a_token_opens_the_api_and_downloads_but_not_the_account_pages(accounts_app):
    make_user(accounts_app, "ann@example.com")
    secret = make_token(accounts_app, "ann@example.com")
    client = accounts_app.test_client()
    for url in ("/account/tokens", "/account", "/", "/all/"):
        response = client.get(url, headers=bearer(secret))
        assert response.status_code == 401, url
        assert "only" in response.get_json()["error"]["message"]


def test_a_token_wins_over_a_session_cookie_sent_with_it(accounts_app):
    make_user(accounts_app, "ann@example.com")
    make_user(accounts_app, "bob@example.com")
    secret = make_token(accounts_app, "bob@example.com")
    client = accounts_app.test_client()
    sign_in(client, "ann@example.com")
    assert client.get("/api/me").get_json()["email"] == "ann@example.com"
    assert client.get("/api/me", headers=bearer(secret)).get_json()["email"] == "bob@example.com"
    assert client.get("/api/me", headers=bearer("igk_wrong")).status_code == 401


def test_flask_tokens_create_prints_the_secret_once_and_revoke_ends_it(accounts_app):
    make_user(accounts_app, "ann@example.com")
    runner = accounts_app.test_cli_runner()
    made = runner.invoke(args=["tokens", "create", "ann@example.com", "nightly", "--expires-days", "7"])
    assert made.exit_code == 0, made.output
    secret = SECRET.search(made.stdout).group()
    assert made.stdout.strip() == secret  # the secret alone on standard output: `$(flask tokens create …)` works
    client = accounts_app.test_client()
    assert client.get("/api/me", headers=bearer(secret)).status_code == 200
    listed = runner.invoke(args=["tokens", "list", "ann@example.com"])
    assert "nightly" in listed.output and "active" in listed.output and secret not in listed.output
    assert runner.invoke(args=["tokens", "revoke", "ann@example.com", "nightly"]).exit_code == 0
    assert client.get("/api/me", headers=bearer(secret)).status_code == 401
    again = runner.invoke(args=["tokens", "revoke", "ann@example.com", "nightly"])
    assert again.exit_code != 0 and "no live token" in again.output


def test_flask_tokens_refuses_unknown_accounts_and_taken_names(accounts_app):
    make_user(accounts_app, "ann@example.com")
    runner = accounts_app.test_cli_runner()
    assert "No account" in runner.invoke(args=["tokens", "create", "zed@example.com", "x"]).output
    runner.invoke(args=["tokens", "create", "ann@example.com", "x"])
    assert "already have a token" in runner.invoke(args=["tokens", "create", "ann@example.com", "x"]).output


def test_without_accounts_the_api_needs_no_token_and_the_page_makes_none(app, client):
    assert client.get("/api/me").get_json()["auth_mode"] == "none"
    page = client.get("/account/tokens")
    assert page.status_code == 200 and "needs no token" in page.get_data(as_text=True)
    assert client.post("/account/tokens", data={"csrf_token": csrf_for(client), "name": "x"}).status_code == 404
