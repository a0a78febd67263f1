"""The thread worker: 100 jobs in flight in one process each finish exactly once; SIGTERM requeues the unfinished."""

import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import API_KEY, drain
from factories import make_batch
from fake_stability import FakeStability

from app.extensions import db
from app.generations.lifecycle import WORKER_STOPPED
from app.models import Generation
from app.processes.group import ProcessGroup

ROOT = Path(__file__).resolve().parents[1]


def statuses(app):
    with app.app_context():
        return Counter(db.session.scalars(sa.select(Generation.status)))


def test_a_hundred_jobs_in_flight_in_one_process_each_finish_exactly_once(make_app):
    # Answered once all 100 wait on the API together (or after 30 s, and then the assertion below fails).
    with FakeStability(api_key=API_KEY, latency=30.0, rate_limit=None, hold_until=100) as fake:
        app = make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
                       STABILITY_RATE_LIMIT="1000/1", WORKER_CONCURRENCY=100, WORKER_PROCESSES=1)
        prompts = [f"image number {i}" for i in range(100)]
        make_batch(app, *prompts)
        drain(app, slots=100)
        assert statuses(app) == {"succeeded": 100}
        deadline = time.monotonic() + 10
        while len(fake.generate_requests) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)  # the fake records a request just after answering it
        sent = Counter(request.form["prompt"] for request in fake.generate_requests)
        assert sent == Counter(prompts)  # each prompt reached the API once
        assert fake.max_concurrency == 100  # and they really were in flight together
    files = [p for p in Path(app.config["MEDIA_ROOT"]).rglob("*") if p.is_file()]
    assert len(files) == 200  # one image and one thumbnail each, no more


@pytest.mark.fault
def test_sigterm_lets_jobs_finish_within_the_grace_period_and_requeues_the_rest(make_app, migrated, redis_url,
                                                                                   tmp_path):
    with FakeStability(api_key=API_KEY, latency=4.0, rate_limit=None) as fake:
        app = make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url)
        _, ids = make_batch(app, "slow one", "slow two", "slow three")
        env = {**os.environ, "DATABASE_URL": migrated, "REDIS_URL": redis_url, "SECRET_KEY": "x",
               "STABILITY_API_KEY": API_KEY, "STABILITY_API_BASE_URL": fake.base_url, "WORKER_CONCURRENCY": "3",
               "WORKER_PROCESSES": "1", "WORKER_SHUTDOWN_GRACE": "1", "MEDIA_ROOT": app.config["MEDIA_ROOT"]}
        with ProcessGroup("worker.py", [sys.executable, "worker.py"], cwd=ROOT, env=env,
                          log=tmp_path / "worker.log") as worker:
            worker.wait_until(lambda: statuses(app).get("running", 0) == 3, "three jobs running", timeout=30)
            stopped = time.monotonic()
            worker.stop(grace=30)
            took = time.monotonic() - stopped
        assert took < 10, f"took {took:.1f} s to stop"
        with app.app_context():
            rows = [db.session.get(Generation, i) for i in ids]
            # The API takes 4 s and the grace was 1 s: every job was put back in line, its attempt not counted.
            assert [(g.status, g.attempts, g.error) for g in rows] == [("queued", 0, WORKER_STOPPED)] * 3
        drain(app, slots=3)
        assert statuses(app) == {"succeeded": 3}
