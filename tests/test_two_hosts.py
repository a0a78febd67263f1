"""Two hosts, simulated: two web processes and two worker processes sharing only PostgreSQL, Redis and S3."""

import hashlib
import io
import re
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests
from conftest import s3_settings
from factories import make_batch
from live_stack import BIN, ROOT, _environment, spawn
from redis import Redis
from rq import Worker
from seaweed import CREDENTIALS

from app.processes.group import free_port, http_ok, wait_until

pytestmark = pytest.mark.s3
PROMPTS = [f"a lighthouse number {i}" for i in range(8)]
CONCURRENCY = 2  # per worker process


@contextmanager
def host(name: str, root: Path, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """One simulated machine in its own empty folder: gunicorn and `python worker.py`; yields its URL and folder."""
    folder = root / name
    folder.mkdir()
    own = {**env, "MEDIA_ROOT": str(folder / "media")}  # never written: every file goes to S3
    port = free_port()
    web = spawn(f"{name}-web", [str(BIN / "gunicorn"), "--pythonpath", str(ROOT), "--bind", f"127.0.0.1:{port}",
                                "--workers", "1", "--threads", "4", "wsgi:app"],
                _environment(own, CONCURRENCY), root, cwd=folder)
    with web, spawn(f"{name}-worker", [sys.executable, str(ROOT / "worker.py")], _environment(own, CONCURRENCY),
                    root, cwd=folder) as worker:
        wait_until(http_ok(f"http://127.0.0.1:{port}/healthz"), f"{name}'s web server", watch=[web, worker])
        yield f"http://127.0.0.1:{port}", folder


def wait_for_batch(base_url: str, batch_id: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(f"{base_url}/api/batches/{batch_id}", timeout=10).json()
        if status["done"]:
            return status
        time.sleep(0.5)
    raise AssertionError(f"batch {batch_id} not done: {status}")


def made_by(logs: Path, name: str, ids: list[int]) -> set[int]:
    """The generations whose job this host's worker ran (the job logs 'image <id> succeeded in …' as it ends)."""
    text = (logs / f"{name}-worker.log").read_text()
    return {gid for gid in ids if re.search(rf"\bimage {gid} succeeded in ", text)}


def test_a_batch_made_by_two_workers_is_fully_visible_from_either_web_process(make_app, migrated, redis_url,
                                                                             seaweed, tmp_path):
    settings = s3_settings(seaweed)
    app = make_app(**settings)  # the test's own view of the same database (and its cleanup)
    env = {**settings, **CREDENTIALS, "DATABASE_URL": migrated, "REDIS_URL": redis_url, "SECRET_KEY": "two-hosts",
           "AUTH_MODE": "none", "STABILITY_API_KEY": "", "DEMO_PROVIDER_DELAY": "1",
           "AWS_EC2_METADATA_DISABLED": "true", "REAPER_INTERVAL_SECONDS": "5"}
    with ExitStack() as stack:
        (url_a, folder_a), (url_b, folder_b) = (stack.enter_context(host(name, tmp_path, env)) for name in "ab")
        redis = Redis.from_url(redis_url)
        wait_until(lambda: len(Worker.all(connection=redis)) >= 2 * CONCURRENCY, "both hosts' workers")
        batch_id, ids = make_batch(app, *PROMPTS)
        status = wait_for_batch(url_a, batch_id)
        assert [g["status"] for g in status["generations"]] == ["succeeded"] * len(PROMPTS)
        by_a, by_b = made_by(tmp_path, "a", ids), made_by(tmp_path, "b", ids)
        assert by_a and by_b and by_a | by_b == set(ids) and not by_a & by_b

        seen = {}
        for base in (url_a, url_b):
            seen[base] = everything_visible_from(base, batch_id, ids)
        assert seen[url_a] == seen[url_b]
        assert requests.get(f"{url_b}/readyz", timeout=10).json()["checks"]["media"] == "ok"
    for folder in (folder_a, folder_b):
        assert [p for p in folder.rglob("*") if p.is_file()] == []  # nothing on either host's disk


def everything_visible_from(base: str, batch_id: int, ids: list[int]) -> dict:
    """Fetch the generate page, gallery, detail pages, files, thumbnails and ZIP; return their contents' hashes."""
    session = requests.Session()
    page = session.get(f"{base}/generate/{batch_id}", timeout=10).text
    gallery = session.get(f"{base}/all/", timeout=10).text
    digests = {}
    for gid in ids:
        assert f"/images/{gid}/file?v=" in page and f"/images/{gid}/thumb?v=" in gallery
        assert session.get(f"{base}/images/{gid}", timeout=10).status_code == 200
        image = session.get(f"{base}/images/{gid}/file", timeout=10)  # a redirect to the bucket, followed
        assert image.status_code == 200 and image.history[0].status_code == 302
        thumb = session.get(f"{base}/images/{gid}/thumb", timeout=10)
        assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
        digests[gid] = (hashlib.sha256(image.content).hexdigest(), hashlib.sha256(thumb.content).hexdigest())
    archive = zipfile.ZipFile(io.BytesIO(session.get(f"{base}/generate/{batch_id}/images.zip", timeout=30).content))
    assert archive.testzip() is None and len(archive.namelist()) == len(ids)
    zipped = [hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()]
    assert zipped == [digests[gid][0] for gid in ids]
    return digests
