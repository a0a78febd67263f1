"""Faults injected into the real processes (`python worker.py`, its own redis-server, PostgreSQL, the fake API):
every card ends final within a bound, no image is lost or made twice, and no file is left without a row."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import psycopg
import pytest
import sqlalchemy as sa
from conftest import throwaway_database
from factories import make_batch
from fake_stability import FakeStability, RecordedRequest
from flask import Flask
from live_stack import ROOT, migrate, start_worker
from redis import Redis
from rq import Worker

from app import create_app
from app.accounts.users import local_user
from app.config import TestConfig
from app.extensions import db
from app.generations import edits, statements
from app.generations.queue import PAUSE_KEY, PAUSED_OUT_OF_CREDITS
from app.models import FINAL_STATUSES, Batch, Generation
from app.processes.group import ProcessGroup, free_port
from app.processes.redis_server import EmbeddedRedis

pytestmark = pytest.mark.fault

KEY = "fault-test-key"
CONCURRENCY = 2
# Both slots are threads of one worker process: the design in production, where a process holds many jobs.
WORKER_PROCESSES = 1
STALE_SECONDS = 6.0
INTERVAL_SECONDS = 2.0
# Short reaper settings and quick retries, so each fault heals in seconds; scenarios add their own.
WORKER_ENV = {
    "REAPER_STALE_SECONDS": f"{STALE_SECONDS:g}", "REAPER_INTERVAL_SECONDS": f"{INTERVAL_SECONDS:g}",
    "STABILITY_RETRY_BASE_DELAY": "0.2", "STABILITY_TIMEOUT": "2,10", "STABILITY_LOCKOUT_SECONDS": "3",
    "WORKER_PROCESSES": str(WORKER_PROCESSES),
}
TIMED_OUT_REASON = "The Stability API did not answer in time"
# The time a loaded two-core machine may take to start `python worker.py` and fork its workers.
START_SLACK = 15.0


@dataclass
class Infra:
    """What the module's scenarios share: one migrated database and one redis-server that can be emptied."""

    database_url: str
    redis: EmbeddedRedis
    tmp: Path


@contextmanager
def fault_infra(tmp: Path) -> Iterator[Infra]:
    """A throwaway database migrated by `flask db upgrade`, and a redis-server on a TCP port of its own.

    The server keeps nothing on disk: stopped and started again, it is empty."""
    redis_server = EmbeddedRedis(tmp / "redis", port=free_port(), keep_data=False)
    with throwaway_database(tmp) as database_url, redis_server as redis:
        migrate({"DATABASE_URL": database_url, "REDIS_URL": redis.url, "SECRET_KEY": "faults"})
        yield Infra(database_url, redis, tmp)


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """The module's database and Redis."""
    with fault_infra(tmp_path_factory.mktemp("faults")) as infra:
        yield infra


@dataclass
class Stack:
    """One scenario: the worker process, the fake API, and an app the test reads rows through."""

    infra: Infra
    fake: FakeStability
    app: Flask
    env: dict[str, str]
    log_dir: Path
    concurrency: int = CONCURRENCY
    worker: ProcessGroup | None = None
    expected_exits: set[int] = field(default_factory=set)

    @property
    def media(self) -> Path:
        """MEDIA_ROOT of the worker."""
        return Path(self.env["MEDIA_ROOT"])

    def start_worker(self) -> None:
        """Start `python worker.py` (appending to the same log)."""
        self.worker = start_worker(self.env, self.log_dir, self.concurrency)

    def kill_worker(self) -> None:
        """SIGKILL the pool and all its workers at once."""
        assert self.worker is not None
        self.expected_exits.add(self.worker.pid)
        self.worker.kill()

    def submit(self, prompts: list[str]) -> list[int]:
        """Create a batch as the home page does (in an app context of its own: no connection is held between
        polls, since a scenario may terminate it); return its generation ids."""
        return make_batch(self.app, *prompts)[1]

    def rows(self) -> list[Generation]:
        """Every generation as the database holds it now, detached so it can be read later."""
        for _ in range(3):
            try:
                rows = db.session.scalars(sa.select(Generation).order_by(Generation.id)).all()
                break
            except sa.exc.DBAPIError:  # a scenario terminated this connection too
                statements.release()
        db.session.expunge_all()
        statements.release()
        return list(rows)

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll check() until true; return the seconds it took; fail, naming what, at the deadline."""
        started = time.monotonic()
        while not check():
            if self.worker_died():
                raise AssertionError(f"worker.py exited with {self.worker.returncode} while waiting for {what}")
            if time.monotonic() - started > timeout:
                statuses = collections.Counter(g.status for g in self.rows())
                raise AssertionError(f"no {what} within {timeout:.0f} s; rows: {dict(statuses)}")
            time.sleep(0.2)
        return time.monotonic() - started

    def worker_died(self) -> bool:
        """Whether `python worker.py` exited without the scenario killing it."""
        worker = self.worker
        return worker is not None and worker.returncode is not None and worker.pid not in self.expected_exits

    def wait_final(self, timeout: float) -> list[Generation]:
        """Wait until every row is final; return them."""
        self.wait_until(lambda: all(g.status in FINAL_STATUSES for g in self.rows()), timeout, "final rows")
        return self.rows()

    def count(self, status: str) -> int:
        """How many rows have this status now."""
        return sum(g.status == status for g in self.rows())

    def worker_log(self) -> str:
        """Everything `python worker.py` wrote, every run of it."""
        path = self.log_dir / "worker.log"
        return path.read_text(errors="replace") if path.exists() else "(no worker log)"


def _reset(infra: Infra) -> None:
    """Start each scenario with no rows and an empty Redis."""
    db.session.execute(sa.delete(Generation))
    db.session.execute(sa.delete(Batch))
    db.session.commit()
    Redis.from_url(infra.redis.url).flushall()


@contextmanager
def running_stack(infra: Infra, tmp: Path, fake: FakeStability, concurrency: int = CONCURRENCY,
                  **env: str) -> Iterator[Stack]:
    """Start `python worker.py` against the fake with WORKER_ENV (and env); print its log if the scenario fails."""
    settings = {"DATABASE_URL": infra.database_url, "REDIS_URL": infra.redis.url, "STABILITY_API_KEY": KEY,
                "STABILITY_API_BASE_URL": fake.base_url, "SECRET_KEY": "faults", "MEDIA_ROOT": str(tmp / "media"),
                **WORKER_ENV, **env}
    with mock.patch.dict(os.environ, settings):
        # The same settings as the worker's (a row's max_attempts comes from the app that creates it).
        app = create_app(TestConfig(str(tmp / "instance"), SQLALCHEMY_DATABASE_URI=infra.database_url,
                                    STABILITY_API_KEY=KEY, STABILITY_RETRY_BASE_DELAY=0.2))
    with app.app_context():
        _reset(infra)
        stack = Stack(infra, fake, app, settings, tmp, concurrency)
        try:
            stack.start_worker()
            redis = Redis.from_url(infra.redis.url)
            stack.wait_until(lambda: len(Worker.all(connection=redis)) >= WORKER_PROCESSES, START_SLACK, "workers")
            yield stack
        except BaseException:
            print(f"----- worker.py log -----\n{stack.worker_log()}")
            raise
        finally:
            if stack.worker is not None:
                stack.worker.stop()
            db.session.remove()
            db.engine.dispose()


# --- what every scenario checks -----------------------------------------------------------------

def images_made(requests: list[RecordedRequest]) -> collections.Counter[str]:
    """How many images the fake handed out per prompt."""
    return collections.Counter(r.form.get("prompt", "") for r in requests if r.status == 200)


def media_files(media: Path) -> set[str]:
    """Every file under MEDIA_ROOT, temp files included, relative to it."""
    return {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()} if media.exists() else set()


def assert_no_orphan_files(stack: Stack, rows: list[Generation]) -> None:
    """Every file on disk belongs to a row, and every stored name is on disk: one image and thumbnail per card."""
    stored = {name for g in rows for name in (g.file_name, g.thumb_name) if name}
    assert media_files(stack.media) == stored


def assert_each_prompt_made_once(stack: Stack, rows: list[Generation]) -> None:
    """Every card succeeded with its own image, and the API made exactly one image per prompt."""
    assert [g.status for g in rows] == ["succeeded"] * len(rows)
    assert images_made(stack.fake.generate_requests) == {g.prompt: 1 for g in rows}
    assert_no_orphan_files(stack, rows)


def snapshot(rows: list[Generation]) -> list[tuple]:
    """What a card shows, comparable between two reads."""
    return [(g.id, g.status, g.error, g.attempts, g.job_id) for g in rows]


def report(fault: str, seconds: float) -> None:
    """Note how long the fault took to heal (shown with -s or on failure)."""
    print(f"{fault}: healed {seconds:.1f} s after the fault")


# --- the scenarios --------------------------------------------------------------------------------

def test_a_worker_killed_mid_call_is_restarted_and_its_cards_finish_as_a_second_attempt(infra, tmp_path):
    with FakeStability(api_key=KEY, latency=3.0) as fake, running_stack(infra, tmp_path, fake) as stack:
        stack.submit([f"killed worker {i}" for i in range(4)])
        stack.wait_until(lambda: fake.in_flight == CONCURRENCY, 20, "both workers calling the API")
        interrupted = {g.prompt for g in stack.rows() if g.status == "running"}
        stack.kill_worker()
        killed_at = time.monotonic()
        stack.start_worker()
        rows = stack.wait_final(STALE_SECONDS + 4 * INTERVAL_SECONDS + 2 * fake.latency + START_SLACK)
        report("worker SIGKILL", time.monotonic() - killed_at)
    assert len(interrupted) == CONCURRENCY
    assert [g.status for g in rows] == ["succeeded"] * len(rows)
    assert {g.prompt: g.attempts for g in rows} == {g.prompt: 2 if g.prompt in interrupted else 1 for g in rows}
    assert all(g.error is None for g in rows)
    # The killed calls may still have been answered (and charged) into a closed socket; after the kill,
    # every prompt that had no image yet got exactly one.
    after_kill = [r for r in fake.generate_requests if r.arrived_at > killed_at]
    assert images_made(after_kill) == {g.prompt: 1 for g in rows}
    assert_no_orphan_files(stack, rows)


def test_redis_restarted_empty_mid_batch_loses_no_card_and_makes_each_image_once(infra, tmp_path):
    with FakeStability(api_key=KEY, latency=1.0) as fake, running_stack(infra, tmp_path, fake) as stack:
        # The first prompt's call fails with a 500 during the outage: its retry must wait for the rate
        # limiter's Redis, not burn its attempts on it.
        stack.submit(["redis outage 0 [e500x2]"] + [f"redis outage {i}" for i in range(1, 8)])
        stack.wait_until(lambda: fake.in_flight == CONCURRENCY, 20, "both workers calling the API")
        infra.redis.stop()
        stopped_at = time.monotonic()
        time.sleep(5)  # the outage itself
        infra.redis.start()
        rows = stack.wait_final(5 + 4 * INTERVAL_SECONDS + 8 * fake.latency + START_SLACK)
        report("Redis restarted empty", time.monotonic() - stopped_at)
        redis = Redis.from_url(infra.redis.url)
        # The workers rode the outage out (none died and was replaced) and are registered with RQ again.
        stack.wait_until(lambda: len(Worker.all(connection=redis)) == WORKER_PROCESSES, 10, "workers registered again")
        assert stack.worker is not None and stack.worker.running
        assert " is dead" not in stack.worker_log()
        assert re.search(r"requeued [1-9]\d* images? whose job Redis had lost", stack.worker_log())  # queued again
    assert_each_prompt_made_once(stack, rows)


def terminate_connections(database_url: str) -> int:
    """Drop every other connection to the scenario's database, as a failover or an admin would."""
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall())


def test_dropped_database_connections_mid_batch_still_end_every_card_with_its_image(infra, tmp_path):
    if not infra.database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) to terminate connections")
    with FakeStability(api_key=KEY, latency=1.0) as fake, running_stack(infra, tmp_path, fake) as stack:
        stack.submit([f"database drop {i}" for i in range(6)])
        stack.wait_until(lambda: fake.in_flight == CONCURRENCY, 20, "both workers calling the API")
        dropped, until = 0, time.monotonic() + 3 * fake.latency
        while time.monotonic() < until:  # over and over, so some drops land mid-statement
            dropped += terminate_connections(infra.database_url)
            time.sleep(0.05)
        dropped_at = time.monotonic()
        rows = stack.wait_final(6 * fake.latency + 4 * INTERVAL_SECONDS + START_SLACK)
        report("PostgreSQL connections dropped", time.monotonic() - dropped_at)
    assert dropped >= CONCURRENCY
    assert_each_prompt_made_once(stack, rows)


def test_a_hanging_api_fails_the_cards_with_the_timeout_after_their_attempts(infra, tmp_path):
    env = {"STABILITY_TIMEOUT": "1,2", "STABILITY_MAX_ATTEMPTS": "2"}
    with FakeStability(api_key=KEY) as fake, running_stack(infra, tmp_path, fake, **env) as stack:
        stack.submit([f"hanging api {i} [hang]" for i in range(3)] + ["a prompt the API answers"])
        started = time.monotonic()
        rows = stack.wait_final(2 * (2 * 2 + 1) + 4 * INTERVAL_SECONDS + START_SLACK)
        report("API hanging", time.monotonic() - started)
        hung_requests = fake.in_flight  # never answered; the client gave up on each
    hung = [g for g in rows if "[hang]" in g.prompt]
    assert {(g.status, g.error, g.attempts) for g in hung} == {("failed", TIMED_OUT_REASON, 2)}
    assert hung_requests == 2 * len(hung)  # each attempt was sent once; the heartbeats kept the reaper away
    assert [g.status for g in rows if g not in hung] == ["succeeded"]
    assert_no_orphan_files(stack, rows)


def test_a_429_lockout_mid_batch_is_sat_out_and_every_card_succeeds(infra, tmp_path):
    # The fake allows 4 requests a minute, locking out for 3 s; the app believes it may send far more.
    fake_limit = FakeStability(api_key=KEY, latency=0.3, rate_limit=(4, 60.0), lockout=3.0)
    env = {"STABILITY_RATE_LIMIT": "100/10", "STABILITY_LOCKOUT_SECONDS": "3"}
    with fake_limit as fake, running_stack(infra, tmp_path, fake, **env) as stack:
        stack.submit([f"rate limited {i}" for i in range(8)])
        started = time.monotonic()
        rows = stack.wait_final(8 * fake.latency + 2 * fake.lockout + START_SLACK)
        report("429 lockout", time.monotonic() - started)
    requests = sorted(fake.generate_requests, key=lambda r: r.arrived_at)
    first_429 = next(r for r in requests if r.status == 429)
    # Only calls already on their way when the first 429 came back may have met the lockout too.
    during_lockout = [r for r in requests if first_429.answered_at + 0.5 < r.arrived_at < first_429.arrived_at + 3.0]
    assert during_lockout == []
    assert 1 <= fake.count_429 <= CONCURRENCY
    assert_each_prompt_made_once(stack, rows)


def test_running_out_of_credits_pauses_the_queue_until_resumed_and_burns_nothing(infra, tmp_path):
    # Enough credits for three Core images. The reaper's own balance check is left for later (a long
    # interval), so the resume here is the operator's `flask queue resume`.
    env = {"REAPER_INTERVAL_SECONDS": "120"}
    with FakeStability(api_key=KEY, latency=0.5, credits=9.0) as fake, \
            running_stack(infra, tmp_path, fake, **env) as stack:
        stack.submit([f"out of credits {i}" for i in range(8)])
        redis = Redis.from_url(infra.redis.url)
        stack.wait_until(lambda: redis.get(PAUSE_KEY) is not None, 20, "the queue pausing")
        stack.wait_until(lambda: fake.in_flight == 0 and stack.count("running") == 0, 10, "calls in flight ending")
        paused_rows = stack.rows()
        calls_when_paused = len(fake.generate_requests)
        time.sleep(2 * INTERVAL_SECONDS)  # a paused queue must stay idle: watch it for a while
        assert len(fake.generate_requests) == calls_when_paused
        assert snapshot(stack.rows()) == snapshot(paused_rows)
        fake.credits = 1000.0
        resumed_at = time.monotonic()
        resume = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "queue", "resume"], cwd=ROOT,
                                env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=60)
        assert resume.returncode == 0, resume.stderr
        assert "was paused" in resume.stdout and "not paused" not in resume.stdout
        rows = stack.wait_final(8 * fake.latency + START_SLACK)
        report("402 out of credits, after `flask queue resume`", time.monotonic() - resumed_at)
    assert collections.Counter(g.status for g in paused_rows) == {"succeeded": 3, "queued": 5}
    refused = [r for r in fake.generate_requests if r.status == 402]
    assert 1 <= len(refused) <= CONCURRENCY  # only the calls already in flight when the account ran dry
    # The refused cards say why they wait; the attempt that was refused does not count.
    told = [g for g in paused_rows if g.error == PAUSED_OUT_OF_CREDITS]
    assert len(told) == len(refused) and all(g.status == "queued" and g.attempts == 0 for g in told)
    assert_each_prompt_made_once(stack, rows)


def test_a_worker_killed_while_an_async_operation_waits_fetches_its_result_after_a_restart_sending_it_once(
        infra, tmp_path):
    # The API keeps the creative upscale in progress until released: the kill lands while the row waits.
    with FakeStability(api_key=KEY, async_polls=10_000) as fake, running_stack(
            infra, tmp_path, fake, STABILITY_RESULT_POLL_SECONDS="0.5") as stack:
        (source_id,) = stack.submit(["an async source"])
        stack.wait_until(lambda: stack.count("succeeded") == 1, 20, "the source image")
        with stack.app.test_request_context():
            (upscale,) = edits.create_edit_batch(local_user(), [source_id], "upscale-creative",
                                                 {"prompt": "crisp"}).generations
            upscale_id = upscale.id
        db.session.expunge_all()  # the rows are read afresh below, not from this session's memory
        stack.wait_until(lambda: len([r for r in fake.result_requests if r.status == 202]) >= 2, 20,
                         "the upscale polled while in progress")
        (waiting,) = [g for g in stack.rows() if g.id == upscale_id]
        assert waiting.status == "running" and waiting.result_id
        stack.kill_worker()
        killed_at = time.monotonic()
        fake.release_results()
        stack.start_worker()
        rows = stack.wait_final(STALE_SECONDS + 4 * INTERVAL_SECONDS + START_SLACK)
        report("worker SIGKILL while an async operation waits", time.monotonic() - killed_at)
    (made,) = [g for g in rows if g.id == upscale_id]
    assert made.status == "succeeded" and made.result_id == waiting.result_id and (made.width, made.height) == (
        4096, 4096)
    posts = [r for r in fake.edit_requests if r.path.endswith("/upscale/creative")]
    assert len(posts) == 1  # polled by its stored id after the restart, never sent again
    assert fake.result_requests[-1].status == 200 and fake.result_requests[-1].arrived_at > killed_at
    assert_no_orphan_files(stack, rows)
