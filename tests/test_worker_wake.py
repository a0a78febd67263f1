"""A new user's queue is listened to at once: the web side wakes workers blocked on the queues they know, and the
new user still takes turns with a busy one."""

import threading
import time
from collections import Counter

import sqlalchemy as sa
from conftest import API_KEY
from factories import make_batch, make_user
from fake_stability import FakeStability

from app.extensions import db
from app.generations import queue
from app.models import FINAL_STATUSES, Generation
from app.services import services
from app.worker import pool
from app.worker.pool import GenerationWorker

# The worker's own look for new queues, made far longer than any bound below: only a wake can meet them.
LONG_WAIT = 30


def statuses(app) -> Counter:
    with app.app_context():
        return Counter(db.session.scalars(sa.select(Generation.status)))


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.01)


def blocked_in_blpop(app) -> bool:
    """Whether a client of this test's Redis database waits in BLPOP: the worker, on the queues it knows."""
    redis = services(app).require_redis()
    number = int(redis.connection_pool.connection_kwargs.get("db", 0))
    return any(c.get("cmd") == "blpop" and int(c.get("db", -1)) == number for c in redis.client_list())


def run_worker_during(app, slots: int, scenario) -> None:
    """A real worker in this (the main) thread, as worker.py runs it, until scenario() beside it returns."""
    app_services = services(app)
    redis = app_services.require_redis()
    worker = GenerationWorker([app_services.require_queue()], connection=redis, app=app, slots=slots)
    errors = []

    def beside() -> None:
        try:
            scenario()
        except BaseException as exc:
            errors.append(exc)
        finally:
            worker._stop_requested = True  # what SIGTERM sets
            redis.rpush(queue.WAKE_KEY, "the test is over")  # ends the worker's wait now

    thread = threading.Thread(target=beside)
    thread.start()
    worker.work()
    thread.join()
    if errors:
        raise errors[0]


def test_a_new_users_first_job_is_claimed_while_the_worker_waits_on_the_queues_it_knows(make_app, monkeypatch):
    monkeypatch.setattr(pool, "DEQUEUE_SECONDS", LONG_WAIT)
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "new@example.com")
    took = []

    def scenario() -> None:
        # Blocked in BLPOP, the worker cannot know a queue the submit below is the first to use.
        wait_for(lambda: blocked_in_blpop(app), "worker waiting on its queues")
        submitted = time.monotonic()
        make_batch(app, "a lighthouse at dusk", owner_email="new@example.com")
        wait_for(lambda: statuses(app).get("queued", 0) == 0, "claim", timeout=LONG_WAIT / 3)
        took.append(time.monotonic() - submitted)
        wait_for(lambda: statuses(app) == {"succeeded": 1}, "image")

    run_worker_during(app, 2, scenario)
    assert took and took[0] < LONG_WAIT / 3


def test_a_new_user_goes_before_a_busy_users_backlog(make_app):
    with FakeStability(api_key=API_KEY, latency=1.5, rate_limit=None) as fake:
        app = make_app(AUTH_MODE="accounts", STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
                       STABILITY_RATE_LIMIT="1000/1")
        make_user(app, "busy@example.com")
        make_user(app, "new@example.com")

        def scenario() -> None:
            make_batch(app, *[f"busy user's image {i}" for i in range(5)], owner_email="busy@example.com")
            wait_for(lambda: statuses(app).get("running", 0) == 2, "both slots busy")
            make_batch(app, "new user's image", owner_email="new@example.com")
            wait_for(lambda: sum(statuses(app)[s] for s in FINAL_STATUSES) == 6, "every image", timeout=60)

        run_worker_during(app, 2, scenario)
        assert statuses(app) == {"succeeded": 6}
        order = [r.form["prompt"] for r in sorted(fake.generate_requests, key=lambda r: r.arrived_at)]
    # Two of the busy user's were running and three waited: the new user's queue goes first, so its image
    # takes the first slot to free up (1.5 s after the submit at the earliest), not one after the backlog.
    assert order.index("new user's image") == 2, order


def test_only_a_new_queue_wakes_and_it_wakes_every_worker_process(make_app):
    app = make_app(AUTH_MODE="accounts")
    user_id = make_user(app, "new@example.com")
    redis = services(app).require_redis()
    redis.sadd("rq:workers", "rq:worker:one", "rq:worker:two")  # two worker processes, as RQ registers them
    make_batch(app, "first", "batch", owner_email="new@example.com")
    make_batch(app, "second batch", owner_email="new@example.com")
    name = queue.queue_name(app.config["RQ_QUEUE_NAME"], user_id)
    assert [token.decode() for token in redis.lrange(queue.WAKE_KEY, 0, -1)] == [name, name]
    assert 0 < redis.ttl(queue.WAKE_KEY) <= queue.WAKE_SECONDS


def test_a_wake_that_fails_leaves_the_queued_job_alone(make_app, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def redis_gone(*args, **kwargs):
        raise RedisConnectionError("Connection reset")

    monkeypatch.setattr(queue.Worker, "count", redis_gone)
    app = make_app(AUTH_MODE="accounts")
    make_user(app, "new@example.com")
    _, (generation_id,) = make_batch(app, "a lighthouse at dusk", owner_email="new@example.com")
    with app.app_context():
        row = db.session.get(Generation, generation_id)
        assert row.status == "queued" and not queue.missing_jobs(services(app).require_redis(), [row.job_id])
