"""From the local run (AUTH_MODE=none) to accounts, as the README tells it: the local user is no admin and holds
nothing once the first admin exists; the sign-in page's "No admin account yet" shows until then."""

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_token, make_user
from flask_migrate import upgrade
from tests_support import PASSWORD, bearer, sign_in

from app.accounts.users import LOCAL_EMAIL, find_user, has_admin, local_user
from app.extensions import db
from app.models import ApiToken, Batch, Generation, User

HINT = "No admin account yet"


@pytest.fixture
def local_then_accounts(make_app):
    """The same database seen first by a local run (images made, a token too), then by an accounts install."""
    local = make_app()
    make_batch(local, "made before accounts", "and another")
    drain(local)
    token = make_token(local, LOCAL_EMAIL)
    return local, make_app(AUTH_MODE="accounts"), token


def owners(app) -> set[str]:
    """The email of every batch's and image's owner."""
    with app.app_context():
        return set(db.session.scalars(sa.select(User.email).join(Batch, Batch.owner_id == User.id))) | set(
            db.session.scalars(sa.select(User.email).join(Generation, Generation.owner_id == User.id)))


def test_the_local_user_is_no_admin_yet_sees_everything_without_accounts(app):
    make_user(app, "ann@example.com")
    make_batch(app, "ann's lighthouse", owner_email="ann@example.com")
    drain(app)
    with app.app_context():
        assert not local_user().is_admin and not has_admin()
    assert "ann&#39;s lighthouse" in app.test_client().get("/all/").get_data(as_text=True)


def test_the_first_admin_takes_what_the_local_run_made_and_the_hint_goes(local_then_accounts):
    local, accounts, token = local_then_accounts
    anonymous = accounts.test_client()
    assert HINT in anonymous.get("/login").get_data(as_text=True)
    result = accounts.test_cli_runner().invoke(args=["users", "create", "you@example.com", "--admin"],
                                               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert owners(accounts) == {"you@example.com"}
    assert HINT not in anonymous.get("/login").get_data(as_text=True)
    with accounts.app_context():
        assert db.session.scalar(sa.select(ApiToken.revoked_at)) is not None
    assert accounts.test_client().get("/api/me", headers=bearer(token)).status_code == 401
    listed = accounts.test_cli_runner().invoke(args=["users", "list"]).output
    assert f"{LOCAL_EMAIL}\tmember" in listed and "you@example.com\tadmin" in listed
    client = accounts.test_client()
    sign_in(client, "you@example.com", PASSWORD)
    assert "made before accounts" in client.get("/all/").get_data(as_text=True)


def test_a_member_made_first_takes_nothing_and_the_hint_stays(local_then_accounts):
    _local, accounts, _token = local_then_accounts
    make_user(accounts, "ann@example.com")
    assert owners(accounts) == {LOCAL_EMAIL}
    assert HINT in accounts.test_client().get("/login").get_data(as_text=True)


def test_the_local_user_cannot_sign_in_or_open_the_admin_pages(local_then_accounts):
    _local, accounts, _token = local_then_accounts
    client = accounts.test_client()
    assert sign_in(client, LOCAL_EMAIL, "", expect=None).status_code in (401, 422)
    assert client.get("/admin/users").status_code == 302


@pytest.fixture
def sqlite_app(make_app, tmp_path):
    """An app on a SQLite file of its own, migrated only as far as each test says."""
    return make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'switch.db'}")


def test_the_migration_demotes_an_old_local_admin_and_hands_its_rows_to_the_real_admin(sqlite_app):
    with sqlite_app.app_context():
        upgrade(revision="b3d5f7a9c1e2")
        insert = "INSERT INTO users (id, email, is_admin, disabled, session_version, created_at) VALUES "
        db.session.execute(sa.text(insert + "(1, :local, 1, 0, 1, '2026-11-01'), (2, 'you@example.com', 1, 0, 1, "
                                   "'2026-11-02')"), {"local": LOCAL_EMAIL})
        db.session.execute(sa.text("INSERT INTO batches (id, owner_id, created_at) VALUES (1, 1, '2026-11-01')"))
        db.session.execute(sa.text("INSERT INTO api_tokens (user_id, name, prefix, secret_hash, created_at) VALUES "
                                   "(1, 'script', 'igk_abc', 'ab', '2026-11-01')"))
        db.session.commit()
        db.session.remove()
        upgrade()
        assert not find_user(LOCAL_EMAIL).is_admin and has_admin()
        assert db.session.scalar(sa.select(Batch.owner_id)) == 2
        assert db.session.scalar(sa.select(ApiToken.revoked_at)) is not None
