"""Deleting an account: by its owner with their password (page and API), by an admin, by `flask users delete`;
signed out at once, then every row and file removed by the worker's job, which a crash does not stop."""

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_token, make_user
from redis import Redis
from tests_support import PASSWORD, bearer, csrf_for, sign_in

from app.accounts.users import find_user, require_user
from app.extensions import db
from app.generations import erasure, reaper
from app.generations.queue import QUEUES_KEY
from app.media_store import orphans
from app.media_store.base import StoreUnavailable
from app.models import ApiToken, Batch, Generation, IdempotentRequest, MonthlySpend, User
from app.services import services

ANN, BOB, ADMIN = "ann@example.com", "bob@example.com", "admin@example.com"


@pytest.fixture
def app(accounts_app):
    make_user(accounts_app, ADMIN, admin=True)
    make_user(accounts_app, ANN)
    make_user(accounts_app, BOB)
    return accounts_app


def made(app, email, count):
    """`count` images of this account made by the real job (demo provider); their generation ids."""
    _, ids = make_batch(app, *[f"{email} picture {n}" for n in range(count)], owner_email=email)
    drain(app)
    return ids


def media_files(app) -> set[str]:
    root = Path(app.config["MEDIA_ROOT"])
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def files_of(app, email) -> set[str]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Generation).where(Generation.owner_id == require_user(email).id))
        return {name for row in rows for name in (row.file_name, row.thumb_name) if name}


def rows_of(app, user_id) -> dict[str, int]:
    """How many rows of every table belong to the account."""
    with app.app_context():
        counts = {model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model).where(column))
                  for model, column in ((User, User.id == user_id), (Batch, Batch.owner_id == user_id),
                                        (Generation, Generation.owner_id == user_id),
                                        (ApiToken, ApiToken.user_id == user_id),
                                        (IdempotentRequest, IdempotentRequest.user_id == user_id),
                                        (MonthlySpend, MonthlySpend.scope == f"user:{user_id}"))}
        return {table: count for table, count in counts.items() if count}


def user_id(app, email) -> int:
    with app.app_context():
        return require_user(email).id


def delete_page_post(client, password):
    token = csrf_for(client, "/account/delete")
    return client.post("/account/delete", data={"csrf_token": token, "password": password})


def test_deleting_your_account_signs_you_out_at_once_and_the_job_removes_every_row_and_file(app):
    made(app, ANN, 4)
    made(app, BOB, 2)
    bob_files = files_of(app, BOB)
    ann_files, ann_id = files_of(app, ANN), user_id(app, ANN)
    assert len(ann_files) == 8 and ann_files <= media_files(app)
    client = app.test_client()
    sign_in(client, ANN)
    copied = client.get_cookie("session").value
    secret = make_token(app, ANN)
    page = client.get("/account/delete").get_data(as_text=True)
    assert "4 images with their files and thumbnails" in page and 'href="/account/export.zip"' in page
    response = delete_page_post(client, PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    # Before any worker ran: signed out, the copied cookie and the token refused, sign-in refused.
    other = app.test_client()
    other.set_cookie("session", copied)
    assert other.get("/api/me").status_code == 401
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 401
    assert sign_in(app.test_client(), ANN, PASSWORD, expect=None).status_code == 401
    assert "Your account is being deleted" in client.get("/login").get_data(as_text=True)
    drain(app)
    assert rows_of(app, ann_id) == {}
    assert not ann_files & media_files(app) and bob_files <= media_files(app)
    assert rows_of(app, user_id(app, BOB))["generations"] == 2


def test_a_wrong_password_on_the_page_removes_nothing_and_says_so_next_to_the_field(app):
    made(app, ANN, 1)
    client = app.test_client()
    sign_in(client, ANN)
    response = delete_page_post(client, "not my password")
    assert response.status_code == 422
    assert 'id="password-error">That is not your password; nothing was deleted.' in response.get_data(as_text=True)
    drain(app)
    assert rows_of(app, user_id(app, ANN))["generations"] == 1 and client.get("/account").status_code == 200


def test_delete_api_me_with_the_password_answers_202_and_the_token_stops_at_once(app):
    made(app, ANN, 2)
    ann_id, ann_files = user_id(app, ANN), files_of(app, ANN)
    secret = make_token(app, ANN)
    client = app.test_client()
    assert client.delete("/api/me", json={}, headers=bearer(secret)).status_code == 422
    wrong = client.delete("/api/me", json={"password": "guess"}, headers=bearer(secret))
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "wrong_password"
    drain(app)
    assert rows_of(app, ann_id)["generations"] == 2 and ann_files <= media_files(app)
    answer = client.delete("/api/me", json={"password": PASSWORD}, headers=bearer(secret))
    assert answer.status_code == 202 and answer.get_json()["status"] == "deleting"
    assert client.get("/api/me", headers=bearer(secret)).status_code == 401
    drain(app)
    assert rows_of(app, ann_id) == {} and not ann_files & media_files(app)


def test_a_session_needs_its_csrf_token_to_delete_through_the_api(app):
    client = app.test_client()
    sign_in(client, ANN)
    assert client.delete("/api/me", json={"password": PASSWORD}).status_code == 400
    with app.app_context():
        assert not require_user(ANN).being_deleted


def test_wrong_passwords_are_throttled_so_a_stolen_token_cannot_guess(app):
    secret = make_token(app, ANN)
    client = app.test_client()
    for _ in range(5):
        assert client.delete("/api/me", json={"password": "guess"}, headers=bearer(secret)).status_code == 403
    throttled = client.delete("/api/me", json={"password": PASSWORD}, headers=bearer(secret))
    assert throttled.status_code == 429 and "try again in 15 minutes" in throttled.get_json()["error"]["message"]
    with app.app_context():
        assert not require_user(ANN).being_deleted


def test_the_only_admin_cannot_delete_their_account_and_auth_mode_none_has_none_to_delete(app, make_app):
    secret = make_token(app, ADMIN)
    refused = app.test_client().delete("/api/me", json={"password": PASSWORD}, headers=bearer(secret))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "last_admin"
    browser = app.test_client()
    sign_in(browser, ADMIN)
    assert "This is the only admin account" in browser.get("/account/delete").get_data(as_text=True)
    none_mode = make_app().test_client().delete("/api/me", json={"password": PASSWORD})
    assert none_mode.status_code == 409 and none_mode.get_json()["error"]["code"] == "no_accounts"


def test_an_admin_deletes_an_account_from_the_users_page(app):
    made(app, BOB, 3)
    bob_id, bob_files = user_id(app, BOB), files_of(app, BOB)
    admin = app.test_client()
    sign_in(admin, ADMIN)
    token = csrf_for(admin)
    users_page = admin.get("/admin/users").get_data(as_text=True)
    assert f'href="/admin/users/{bob_id}/delete"' in users_page
    confirm = admin.get(f"/admin/users/{bob_id}/delete").get_data(as_text=True)
    assert f"Delete {BOB}?" in confirm and "3 images" in confirm and "password" not in confirm.lower()
    done = admin.post(f"/admin/users/{bob_id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert f"{BOB} is being deleted" in done.get_data(as_text=True) and "Being deleted" in done.get_data(as_text=True)
    enable = admin.post(f"/admin/users/{bob_id}/disable", data={"csrf_token": token, "enable": "1"},
                        follow_redirects=True)
    assert "is being deleted; it cannot be enabled again." in enable.get_data(as_text=True)
    own = admin.post(f"/admin/users/{user_id(app, ADMIN)}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Delete your own account from your account page" in own.get_data(as_text=True)
    assert admin.post(f"/admin/users/{bob_id}/delete").status_code == 400  # no CSRF token
    drain(app)
    assert rows_of(app, bob_id) == {} and not bob_files & media_files(app)
    assert BOB not in admin.get("/admin/users").get_data(as_text=True)


def test_members_cannot_delete_other_accounts(app):
    member = app.test_client()
    sign_in(member, ANN)
    token = csrf_for(member)
    assert member.post(f"/admin/users/{user_id(app, BOB)}/delete", data={"csrf_token": token}).status_code == 404
    with app.app_context():
        assert not require_user(BOB).being_deleted


def test_flask_users_delete_asks_then_removes_everything_in_the_foreground(app):
    made(app, ANN, 2)
    ann_id, ann_files = user_id(app, ANN), files_of(app, ANN)
    runner = app.test_cli_runner()
    kept = runner.invoke(args=["users", "delete", ANN], input="n\n")
    assert kept.exit_code == 1 and "Delete ann@example.com and 2 images?" in kept.output
    assert rows_of(app, ann_id)["generations"] == 2
    result = runner.invoke(args=["users", "delete", ANN, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Deleted ann@example.com: 2 images and 4 files." in result.output
    assert rows_of(app, ann_id) == {} and not ann_files & media_files(app)
    refused = runner.invoke(args=["users", "delete", ADMIN, "--yes"])
    assert refused.exit_code == 1 and "only admin" in refused.output


def test_running_and_queued_images_are_canceled_through_the_lifecycle(app):
    _, ids = make_batch(app, "still queued", "another", owner_email=ANN)
    redis = services(app).require_redis()
    with app.app_context():
        ann = require_user(ANN)
        job_ids = [db.session.get(Generation, gid).job_id for gid in ids]
        erasure.request(ann, queue_job=False)
        assert {db.session.get(Generation, gid).status for gid in ids} == {"canceled"}
        assert all(redis.hget(f"rq:job:{job_id}", "status") in (None, b"canceled") for job_id in job_ids)
        # The queued reservation came back: nothing of the allowance stays reserved.
        assert db.session.scalar(sa.select(MonthlySpend.credits).where(MonthlySpend.scope == f"user:{ann.id}")) == 0
        ann_id = ann.id
        assert erasure.run(ann_id).done
    assert rows_of(app, ann_id) == {}
    assert f"generations-u{ann_id}".encode() not in Redis.from_url(app.config["REDIS_URL"]).smembers(QUEUES_KEY)


def test_a_deletion_that_crashed_midway_is_resumed_by_the_reaper(app, monkeypatch):
    made(app, ANN, 5)
    ann_id, ann_files = user_id(app, ANN), files_of(app, ANN)
    real = erasure._delete_images
    calls = []

    def crash_on_the_third_chunk(rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("the worker died here")
        return real(rows)

    monkeypatch.setattr(erasure, "_delete_images", crash_on_the_third_chunk)
    app.config["ACCOUNT_DELETION_CHUNK"] = 1
    with app.app_context():
        erasure.request(require_user(ANN))
    drain(app)  # the job fails on its third chunk
    assert rows_of(app, ann_id)["generations"] == 3 and rows_of(app, ann_id)["users"] == 1
    with app.app_context():
        assert reaper.sweep(app, force=True).deletions_resumed == 0  # its beat is fresh: it may still be running
        silent_since = erasure.utcnow() - timedelta(seconds=app.config["REAPER_STALE_SECONDS"] + 1)
        db.session.execute(sa.update(User).where(User.id == ann_id).values(deletion_heartbeat_at=silent_since))
        db.session.commit()
        assert reaper.sweep(app, force=True).deletions_resumed == 1
        assert reaper.sweep(app, force=True).deletions_resumed == 0  # the beat moved: queued once
    drain(app)
    assert rows_of(app, ann_id) == {} and not ann_files & media_files(app)
    with app.app_context():
        assert find_user(ANN) is None


def test_files_a_down_store_will_not_delete_wait_in_the_orphans_set_and_go_later(app, monkeypatch):
    made(app, ANN, 3)
    ann_id, ann_files = user_id(app, ANN), files_of(app, ANN)
    store = services(app).stores.get("local")
    tried = []

    def down(name):
        tried.append(name)
        raise StoreUnavailable("the disk is not answering")

    monkeypatch.setattr(store, "delete", down)
    with app.app_context():
        erasure.request(require_user(ANN), queue_job=False)
        erased = erasure.run(ann_id)
    assert erased.done and erased.waiting == 6 and len(tried) == 1  # the rest were not tried against a down store
    assert rows_of(app, ann_id) == {} and ann_files <= media_files(app)
    redis = services(app).require_redis()
    assert orphans.waiting(redis) == {f"local:{name}" for name in ann_files}
    monkeypatch.undo()
    with app.app_context():
        assert reaper.sweep(app, force=True).orphans_deleted == 6
    assert not ann_files & media_files(app)


def test_an_account_not_marked_for_deletion_is_left_alone_by_the_job(app):
    made(app, ANN, 1)
    with app.app_context():
        erased = erasure.run(user_id(app, ANN))
    assert not erased.done and erased.images == 0 and rows_of(app, user_id(app, ANN))["generations"] == 1


def test_flask_users_delete_in_the_background_leaves_the_work_to_the_worker(app):
    made(app, ANN, 1)
    ann_id = user_id(app, ANN)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "delete", ANN, "--yes", "--background"])
    assert result.exit_code == 0 and "the workers remove 1 image and the rest" in result.output
    assert f"{ANN}\tmember\tdeleting" in runner.invoke(args=["users", "list"]).output
    enable = runner.invoke(args=["users", "enable", ANN])
    assert enable.exit_code == 1 and "is being deleted; it cannot be enabled again." in enable.output
    assert rows_of(app, ann_id)["generations"] == 1
    drain(app)
    assert rows_of(app, ann_id) == {}
