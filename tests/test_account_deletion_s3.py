"""An account's export and deletion against a real S3 store (SeaweedFS): its 50 images come out in the ZIP, then
not one of its objects is left in the bucket, even when the worker doing it is killed halfway and restarted."""

import io
import json
import zipfile

import pytest
import sqlalchemy as sa
from conftest import drain, s3_settings
from factories import make_batch, make_token, make_user
from live_stack import start_worker
from redis import Redis
from rq import Worker
from seaweed import CREDENTIALS
from tests_support import PASSWORD, bearer

from app.accounts.users import find_user, require_user
from app.extensions import db
from app.generations import erasure
from app.media.export import MANIFEST
from app.models import ApiToken, Batch, Generation, MonthlySpend, User

pytestmark = pytest.mark.s3
ANN, BOB = "ann@example.com", "bob@example.com"


@pytest.fixture
def app(make_app, seaweed):
    app = make_app(**s3_settings(seaweed), AUTH_MODE="accounts")
    make_user(app, ANN)
    make_user(app, BOB)
    return app


def made(app, email, count):
    """`count` images of this account, stored in the bucket by the real job (demo provider)."""
    make_batch(app, *[f"{email} lighthouse {n}" for n in range(count)], owner_email=email)
    drain(app)


def object_keys(app, email) -> set[str]:
    """The bucket keys of the account's images and thumbnails, as their rows name them."""
    prefix = app.config["S3_PREFIX"]
    with app.app_context():
        rows = db.session.scalars(sa.select(Generation).where(Generation.owner_id == require_user(email).id))
        keys = {prefix + name for row in rows if row.storage == "s3" for name in (row.file_name, row.thumb_name)}
    assert None not in keys
    return keys


def rows_left(app, user_id) -> int:
    """Every row of the account, in every table that has one."""
    with app.app_context():
        conditions = ((User, User.id == user_id), (Batch, Batch.owner_id == user_id),
                      (Generation, Generation.owner_id == user_id), (ApiToken, ApiToken.user_id == user_id),
                      (MonthlySpend, MonthlySpend.scope == f"user:{user_id}"))
        return sum(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(where))
                   for model, where in conditions)


def test_fifty_images_are_exported_from_the_bucket_then_deleted_to_the_last_object(app, seaweed):
    made(app, ANN, 50)
    made(app, BOB, 3)
    ann_keys, bob_keys = object_keys(app, ANN), object_keys(app, BOB)
    prefix = app.config["S3_PREFIX"]
    assert len(ann_keys) == 100 and set(seaweed.keys(prefix)) == ann_keys | bob_keys
    secret = make_token(app, ANN)
    client = app.test_client()
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/export", headers=bearer(secret)).get_data()))
    manifest = json.loads(archive.read(MANIFEST))
    assert len(archive.namelist()) == 51 and manifest["image_files"] == 50
    with app.app_context():
        first = db.session.get(Generation, manifest["generations"][0]["id"])
        stored = seaweed.client().get_object(Bucket=seaweed.bucket, Key=prefix + first.file_name)["Body"].read()
    assert archive.read(manifest["generations"][0]["file"]) == stored
    ann_id = manifest["account"]["id"]
    assert client.delete("/api/me", json={"password": PASSWORD}, headers=bearer(secret)).status_code == 202
    drain(app)
    assert set(seaweed.keys(prefix)) == bob_keys  # zero of hers, all of his
    assert rows_left(app, ann_id) == 0


@pytest.mark.fault
def test_a_worker_killed_halfway_through_a_deletion_finishes_it_once_restarted(app, seaweed, tmp_path):
    made(app, ANN, 50)
    made(app, BOB, 2)
    ann_keys, bob_keys = object_keys(app, ANN), object_keys(app, BOB)
    prefix = app.config["S3_PREFIX"]
    env = {**{key: str(value) for key, value in s3_settings(seaweed, S3_PREFIX=prefix).items()}, **CREDENTIALS,
           "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app.config["REDIS_URL"],
           "SECRET_KEY": "deletion", "AUTH_MODE": "accounts", "MEDIA_ROOT": str(tmp_path / "media"),
           "WORKER_PROCESSES": "1", "REAPER_STALE_SECONDS": "3", "REAPER_INTERVAL_SECONDS": "1",
           # One image per step, so there is a halfway to be killed at.
           "ACCOUNT_DELETION_CHUNK": "1"}
    redis = Redis.from_url(app.config["REDIS_URL"])
    worker = start_worker(env, tmp_path, concurrency=2)
    try:
        worker.wait_until(lambda: len(Worker.all(connection=redis)) >= 1, "the worker")
        with app.app_context():
            ann_id = require_user(ANN).id
            erasure.request(require_user(ANN))
        worker.wait_until(lambda: count_images(app, ann_id) <= 45, "the deletion to begin", timeout=60, interval=0.01)
        worker.kill()
        left = count_images(app, ann_id)
        assert 0 < left < 50, f"{left} images left when the worker was killed"
        with app.app_context():
            assert require_user(ANN).being_deleted
        remaining = set(seaweed.keys(prefix))
        assert bob_keys <= remaining and ann_keys & remaining and not ann_keys <= remaining
        worker = start_worker(env, tmp_path, concurrency=2)
        worker.wait_until(lambda: not user_exists(app, ANN), "the deletion to finish", timeout=90)
    finally:
        worker.stop()
    assert set(seaweed.keys(prefix)) == bob_keys
    assert rows_left(app, ann_id) == 0
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert f"deletion of account {ann_id} had stopped; queued again" in log


def count_images(app, user_id) -> int:
    with app.app_context():
        try:
            return db.session.scalar(sa.select(sa.func.count()).select_from(Generation)
                                     .where(Generation.owner_id == user_id))
        finally:
            db.session.remove()


def user_exists(app, email) -> bool:
    with app.app_context():
        try:
            return find_user(email) is not None
        finally:
            db.session.remove()

