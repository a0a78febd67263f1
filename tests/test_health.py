"""/healthz answers whenever the process does; /readyz names each dependency that is down, and never fails."""

import os
import socket
import time

import pytest

from app import create_app
from app.config import TestConfig
from app.generations.queue import WORKER_ALIVE_PREFIX, worker_alive
from app.services import services


def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def live_worker(app):
    """A worker process's heartbeat, as its housekeeping thread writes it (no worker runs: probes only read it)."""
    redis = services(app).redis
    worker_alive(redis, "test-host:1")
    yield redis
    redis.delete(WORKER_ALIVE_PREFIX + "test-host:1")


def readiness(client):
    response = client.get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, response.get_json()


def test_healthz_says_ok_without_asking_anything_else(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_every_dependency_answers(client, live_worker):
    assert readiness(client) == (200, {"status": "ready", "checks": {
        "database": "ok", "redis": "ok", "media": "ok", "workers": "ok"}})


def test_readyz_leaves_nothing_behind_in_media_root(app, client, live_worker):
    assert readiness(client)[0] == 200
    assert os.listdir(app.config["MEDIA_ROOT"]) == []


def test_readyz_is_503_without_any_worker(client):
    status, body = readiness(client)
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"] == {"database": "ok", "redis": "ok", "media": "ok", "workers": "none running"}


def test_readyz_is_503_when_the_only_worker_has_not_sent_a_heartbeat_for_a_minute(app, client, live_worker):
    live_worker.expire(WORKER_ALIVE_PREFIX + "test-host:1", 1)
    time.sleep(1.1)  # the heartbeat lives one minute; this one was made to expire after a second
    status, body = readiness(client)
    assert status == 503 and body["checks"]["workers"] == "none running"


def test_readyz_is_503_when_redis_is_unreachable(make_app):
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0").test_client()
    status, body = readiness(client)
    assert status == 503
    assert body["checks"] == {"database": "ok", "redis": "unreachable", "media": "ok", "workers": "unknown"}


def test_readyz_is_503_when_media_root_is_a_file(make_app, tmp_path, live_worker):
    (tmp_path / "not-a-dir").write_text("x")
    client = make_app(MEDIA_ROOT=str(tmp_path / "not-a-dir")).test_client()
    status, body = readiness(client)
    assert status == 503 and body["checks"]["media"] == "not a directory"


def test_readyz_creates_a_missing_media_root_as_the_first_image_would(make_app, tmp_path, live_worker):
    client = make_app(MEDIA_ROOT=str(tmp_path / "fresh" / "media")).test_client()
    assert readiness(client)[0] == 200
    assert (tmp_path / "fresh" / "media").is_dir()


def test_readyz_is_503_when_media_root_cannot_be_created(make_app, tmp_path, live_worker):
    (tmp_path / "a-file").write_text("x")
    client = make_app(MEDIA_ROOT=str(tmp_path / "a-file" / "media")).test_client()
    assert readiness(client) == (503, {"status": "not ready", "checks": {
        "database": "ok", "redis": "ok", "media": "missing", "workers": "ok"}})


def test_readyz_is_503_when_media_root_is_not_writable(make_app, tmp_path, live_worker, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # what a read-only volume answers (root would not see it)

    client = make_app().test_client()
    monkeypatch.setattr("app.media_store.local.tempfile.NamedTemporaryFile", refused)
    assert readiness(client)[1]["checks"]["media"] == "not writable"


def test_with_everything_down_readyz_is_503_naming_each_and_healthz_is_still_200(tmp_path):
    # Built by hand: make_app would try to empty this app's (unreachable) database afterwards.
    (tmp_path / "a-file").write_text("x")
    database = f"sqlite:///{tmp_path / 'no-such-dir' / 'app.db'}"
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    app = create_app(TestConfig(str(tmp_path / "instance"), SQLALCHEMY_DATABASE_URI=database, REDIS_URL=redis_url,
                                MEDIA_ROOT=str(tmp_path / "a-file" / "media")))
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "unreachable", "redis": "unreachable", "media": "missing",
                                             "workers": "unknown"}
    body = response.get_data(as_text=True)
    for secret in ("sqlite", "redis://", "127.0.0.1", str(tmp_path)):
        assert secret not in body  # names what failed, never where it lives
    assert client.get("/healthz").status_code == 200


def test_an_unexpected_failure_in_a_check_is_reported_not_raised(client, live_worker, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("app.ops.health.live_worker_count", broken)
    status, body = readiness(client)
    assert status == 503 and body["checks"]["workers"] == "error"
