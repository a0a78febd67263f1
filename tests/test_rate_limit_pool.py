"""The shared rate limiter in production shape: 500 prompts through `python worker.py` against a fake API
that enforces the documented limit (150 requests per 10 s, then a 60 s lockout)."""

import time

import pytest
import sqlalchemy as sa
from conftest import private_redis, throwaway_database
from factories import make_batch
from fake_stability import FakeStability
from live_stack import migrate, worker_pool

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import FINAL_STATUSES, Generation

pytestmark = pytest.mark.processes
KEY = "pool-key"
PROMPTS = 500
CONCURRENCY = 16


def test_500_prompts_through_a_worker_pool_never_get_a_429(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pool")
    with FakeStability(api_key=KEY, latency=0.05, rate_limit=(150, 10.0), lockout=60.0) as fake, \
            throwaway_database(tmp) as database_url, private_redis(tmp / "redis") as redis_url:
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "STABILITY_API_KEY": KEY,
               "STABILITY_API_BASE_URL": fake.base_url, "SECRET_KEY": "pool", "MEDIA_ROOT": str(tmp / "media")}
        migrate(env)
        app = create_app(TestConfig(str(tmp), SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url,
                                    STABILITY_API_KEY=KEY, STABILITY_API_BASE_URL=fake.base_url))
        make_batch(app, *[f"prompt number {i}" for i in range(PROMPTS)])
        with worker_pool(env, tmp, CONCURRENCY), app.app_context():
            deadline = time.monotonic() + 180
            while db.session.scalar(sa.select(sa.func.count()).where(Generation.status.not_in(FINAL_STATUSES))):
                assert time.monotonic() < deadline, "the batch did not finish"
                db.session.rollback()
                time.sleep(0.5)
            statuses = db.session.scalars(sa.select(Generation.status)).all()
            db.session.remove()
            db.engine.dispose()
        assert fake.count_429 == 0
        assert statuses.count("succeeded") == PROMPTS
        arrivals = sorted(r.arrived_at for r in fake.generate_requests)
        assert len(arrivals) == PROMPTS  # nothing was sent twice
        busiest = max(sum(1 for t in arrivals[i:] if t - start < 10.0) for i, start in enumerate(arrivals))
        # Never over the limit. How close to it the pool gets is a throughput question for the benchmark,
        # not for a test on a shared machine.
        assert busiest <= 150
