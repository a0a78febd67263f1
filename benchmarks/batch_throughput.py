"""Time batches of N prompts end to end through the real stack and compare with the ideal.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/batch_throughput.py [--prompts 8,32,128] [--latency 1.0] [--concurrency 8]

It starts the loopback fake of Stability's API, a throwaway database (PostgreSQL when DATABASE_URL names
one, else SQLite) and Redis (a free db number on REDIS_URL, else an embedded redis-server), runs
`python worker.py` as production does, times each batch from create_batch() until every generation is
final, then times the htmx poll endpoint. Everything it starts is stopped and dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import math
import os
import platform
import signal
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, so neither the app package nor the test fake is on the path yet.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import fake_stability  # noqa: E402  (needs the path above)
import sqlalchemy as sa  # noqa: E402
from conftest import private_redis, throwaway_database  # noqa: E402
from flask import Flask  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from rq import Worker  # noqa: E402
from rq.job import Job  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.users import create_user, local_user  # noqa: E402
from app.batches.progress import seen_signature  # noqa: E402
from app.batches.queries import generations_of  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.generations.lifecycle import create_batch  # noqa: E402
from app.models import FINAL_STATUSES, Generation, Status  # noqa: E402
from app.processes.group import ProcessGroup  # noqa: E402
from app.providers.rate_limit import parse_rate_limit  # noqa: E402
from app.services import services  # noqa: E402

API_KEY = "bench-key"
POLL_SECONDS = 0.02
READY_TIMEOUT_SECONDS = 60.0


def say(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def as_utc(moment: datetime) -> datetime:
    """SQLite and some RQ fields come back naive; every timestamp here is written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds(start: datetime, end: datetime) -> float:
    """Seconds from start to end, tolerating naive UTC timestamps."""
    return (as_utc(end) - as_utc(start)).total_seconds()


def redact(url: str) -> str:
    """The URL with any password hidden, for the printed command."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def mean(values: list[float]) -> float:
    """Arithmetic mean, NaN for no values (printed as a dash)."""
    return sum(values) / len(values) if values else math.nan


def warmed_fake(prompts: list[str], latency: float,
                api_limit: tuple[int, float] | None) -> fake_stability.FakeStability:
    """Start the fake with every prompt's image already encoded, so timing sees the app, not Pillow."""
    # The fake PNG-encodes a 1536x1536 image per distinct prompt (about 50 ms of CPU, in this
    # process, under the GIL) and caches only 64; unbounded and pre-warmed, that cost drops out.
    render = fake_stability.render_image
    fake_stability.render_image = functools.lru_cache(maxsize=None)(getattr(render, "__wrapped__", render))
    width, height = fake_stability.pixel_size("core", "1:1")
    for prompt in prompts:
        fake_stability.render_image(width, height, "png", hashlib.sha256(prompt.encode()).digest(), False)
    return fake_stability.FakeStability(api_key=API_KEY, latency=latency, rate_limit=api_limit).start()


# ----- the worker pool ------------------------------------------------------------------------------


def worker_pool(env: dict[str, str], log_path: Path) -> ProcessGroup:
    """`python worker.py` (the production WorkerPool) in a process group of its own: `with` runs it, then stops it."""
    return ProcessGroup("worker.py", [sys.executable, "worker.py"], env=env, cwd=REPO_ROOT, log=log_path)


def wait_for_workers(app: Flask, worker: ProcessGroup, slots: int) -> None:
    """Block until the worker processes holding `slots` threads are registered and idle, so start-up is not timed."""
    connection = services(app).require_redis()
    count = min(app.config["WORKER_PROCESSES"], slots)  # one RQ worker per process

    def ready() -> bool:
        workers = Worker.all(connection=connection)
        return len(workers) == count and all(w.get_state() == "idle" for w in workers)

    worker.wait_until(ready, f"{count} idle RQ workers", READY_TIMEOUT_SECONDS)


# ----- measurements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """The running pieces a batch is timed against."""

    app: Flask
    worker: ProcessGroup
    fake: fake_stability.FakeStability
    latency: float
    concurrency: int
    rate: float | None = None  # requests per second the app's limiter admits, when the API enforces a limit


@dataclass(frozen=True)
class BatchResult:
    """What one timed batch measured (seconds unless the name says otherwise)."""

    prompts: int
    wall: float
    ideal: float
    enqueue: float  # time inside create_batch: insert, commit, one enqueue per prompt, commit
    first_start: float  # from before create_batch to the first job starting on a worker
    fake_extra: float  # mean time the fake itself took per answer beyond the configured latency
    app_extra: float  # mean time a job spends in our code (claim, HTTP client, store) beyond the API's answer
    rq_extra: float  # mean RQ bookkeeping per job around our code
    gap: float  # mean idle time on one worker between two of its jobs
    tail: float  # last row final to the poller noticing
    max_per_worker: int
    poll_unchanged_us: float = math.nan
    poll_render_us: float = math.nan
    answers_429: int = 0

    @property
    def ratio(self) -> float:
        """Wall time over ideal time."""
        return self.wall / self.ideal

    @property
    def overhead_ms(self) -> float:
        """Time beyond the ideal, per image."""
        return (self.wall - self.ideal) / self.prompts * 1000


def pending_count(batch_id: int) -> int:
    """How many generations of the batch are not final yet."""
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Generation)
        .where(Generation.batch_id == batch_id, Generation.status.not_in(FINAL_STATUSES))
    )
    # End the read transaction so the next poll sees the workers' later commits.
    db.session.rollback()
    return count or 0


def wait_until_final(batch_id: int, worker: ProcessGroup, timeout: float) -> None:
    """Poll the database every 20 ms until the batch is final, as a watching page would."""
    deadline = time.monotonic() + timeout
    while pending_count(batch_id):
        if worker.returncode is not None:
            raise RuntimeError(f"worker.py exited with status {worker.returncode} mid-batch")
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch_id} not final after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def ideal_seconds(stack: Stack, count: int) -> float:
    """Workers alone: latency per round of `concurrency`; under a rate limit: latency + N / rate."""
    ideal = stack.latency * math.ceil(count / stack.concurrency)
    if stack.rate:
        ideal = max(ideal, stack.latency + count / stack.rate)
    return ideal


def run_batch(stack: Stack, prompts: list[str]) -> tuple[int, BatchResult]:
    """Create one batch the way the prompt form does and time it until every image is final."""
    ideal = ideal_seconds(stack, len(prompts))
    stack.fake.reset()  # its request log then holds this batch's calls only
    with stack.app.test_request_context():
        started_wall = datetime.now(UTC)
        started = time.perf_counter()
        batch = create_batch(local_user(), prompts)
        enqueue = time.perf_counter() - started
        batch_id = batch.id
        wait_until_final(batch_id, stack.worker, timeout=ideal * 5 + 60)
        wall = time.perf_counter() - started
        final_wall = datetime.now(UTC)
        generations = generations_of(batch_id)
        failed = [g for g in generations if g.status_enum is not Status.SUCCEEDED]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(prompts)} did not succeed, e.g. "
                               f"{failed[0].status}: {failed[0].error}")
        api_times = fake_service_times(stack.fake)
        result = breakdown(generations, started_wall, final_wall, api_times)
    return batch_id, BatchResult(prompts=len(prompts), wall=wall, ideal=ideal, enqueue=enqueue,
                                 fake_extra=mean(api_times) - stack.latency, answers_429=stack.fake.count_429,
                                 **result)


def fake_service_times(fake: fake_stability.FakeStability) -> list[float]:
    """Seconds from each generate request reaching the fake to its answer being ready."""
    return [r.answered_at - r.arrived_at for r in fake.generate_requests if r.status == 200]


def finished_jobs(job_ids: list[str]) -> list[Job]:
    """RQ's records of the jobs, once each has an end time."""
    # A row turns final when the job commits; RQ writes ended_at a moment later.
    deadline = time.monotonic() + 10
    while True:
        jobs = Job.fetch_many(job_ids, connection=services().require_redis())
        if all(j is not None and j.ended_at for j in jobs) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    if not all(j is not None and j.ended_at for j in jobs):
        raise RuntimeError("RQ did not record the end of every job within 10 s")
    return jobs


def breakdown(generations: list[Generation], started: datetime, final: datetime, api_times: list[float]) -> dict:
    """Split the time using the rows' timestamps and RQ's own per-job records (worker, start, end)."""
    jobs = finished_jobs([g.job_id for g in generations])
    per_worker: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        per_worker[job.worker_name].append(job)
    gaps = []
    for worker_jobs in per_worker.values():
        worker_jobs.sort(key=lambda j: as_utc(j.started_at))
        gaps += [seconds(a.ended_at, b.started_at) for a, b in zip(worker_jobs, worker_jobs[1:], strict=False)]
    app_times = [seconds(g.started_at, g.finished_at) for g in generations]
    return {
        "first_start": seconds(started, min(as_utc(j.started_at) for j in jobs)),
        "app_extra": mean(app_times) - mean(api_times),
        "rq_extra": mean([seconds(j.started_at, j.ended_at) for j in jobs]) - mean(app_times),
        "gap": mean(gaps),
        "tail": seconds(max(as_utc(g.finished_at) for g in generations), final),
        "max_per_worker": max(len(v) for v in per_worker.values()),
    }


def time_requests(app: Flask, url: str, expected: int, count: int) -> float:
    """Mean microseconds per GET through the test client (full Flask stack, no socket)."""
    client = app.test_client()
    for _ in range(20):  # compile templates and warm the connection pool first
        client.get(url)
    started = time.perf_counter()
    for _ in range(count):
        response = client.get(url)
        if response.status_code != expected:
            raise RuntimeError(f"GET {url} answered {response.status_code}, expected {expected}")
    return (time.perf_counter() - started) / count * 1e6


def time_poll(app: Flask, batch_id: int, count: int) -> tuple[float, float]:
    """Time the htmx poll with the current signature (204) and a stale one (every card re-rendered)."""
    with app.app_context():
        current = seen_signature(generations_of(batch_id))
        db.session.remove()
    base = f"/generate/{batch_id}/status?seen="
    # An empty `seen` matches no card, so every card is re-rendered: the most a poll can cost.
    return time_requests(app, base + current, 204, count), time_requests(app, base, 200, count)


# ----- report ---------------------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    """Seconds as whole milliseconds, or a dash when there was nothing to measure."""
    return "–" if math.isnan(value) else f"{value * 1000:.0f}"


def report_tables(results: list[BatchResult]) -> str:
    """The Markdown tables: headline numbers, then where the overhead went."""
    lines = [
        "| prompts | wall (s) | ideal (s) | ratio | overhead / image (ms) "
        "| poll, unchanged (µs) | poll, re-render (µs) | 429 answers |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.prompts} | {r.wall:.2f} | {r.ideal:.2f} | {r.ratio:.3f} | {r.overhead_ms:.1f} "
                     f"| {r.poll_unchanged_us:.0f} | {r.poll_render_us:.0f} | {r.answers_429} |")
    lines += [
        "",
        "| prompts | create_batch (ms) | to first job start (ms) | fake API beyond latency (ms) "
        "| our job code beyond API (ms) | RQ / job (ms) | worker idle between jobs (ms) | last final → seen (ms) "
        "| max jobs on one worker |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.prompts} | {fmt_ms(r.enqueue)} | {fmt_ms(r.first_start)} | {fmt_ms(r.fake_extra)} "
                     f"| {fmt_ms(r.app_extra)} "
                     f"| {fmt_ms(r.rq_extra)} | {fmt_ms(r.gap)} | {fmt_ms(r.tail)} | {r.max_per_worker} |")
    return "\n".join(lines)


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, if readable."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def backend_facts(app: Flask) -> tuple[str, str, str]:
    """Which database and Redis the run used, with versions, and how busy the machine already was."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            database = "PostgreSQL " + str(db.session.scalar(sa.text("SHOW server_version")))
        else:
            database = f"SQLite {sqlite3.sqlite_version} (temp file)"
        db.session.remove()
        version = services(app).require_redis().info("server")["redis_version"]
    redis_kind = "embedded redis-server" if not os.environ.get("REDIS_URL") else "REDIS_URL server"
    # Other work on the machine shares the CPUs with 8 workers; the load average shows when it did.
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return database, f"Redis {version} ({redis_kind})", load


def command_line(argv: list[str]) -> str:
    """The command as it was run, with the environment that changes its backends."""
    env = " ".join(f"{k}={redact(os.environ[k])}" for k in ("DATABASE_URL", "REDIS_URL") if os.environ.get(k))
    return f"{env + ' ' if env else ''}.venv/bin/python benchmarks/batch_throughput.py {' '.join(argv)}".strip()


def print_report(results: list[BatchResult], args: argparse.Namespace, facts: tuple[str, str, str],
                 argv: list[str]) -> None:
    """Print the paste-ready report: command, machine, tables."""
    database, redis_kind, load = facts
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"```\n{command_line(argv)}\n```\n")
    warmup = "after an untimed warm-up batch of one job per worker" if args.warmup else "no warm-up batch"
    print(" ".join([
        f"Machine: {cpus} CPUs ({cpu_model()}), Python {platform.python_version()},",
        f"{platform.system()} {platform.release()}, load average {load} at start; {database}; {redis_kind}.",
        f"Fake Stability API on loopback, {args.latency:g} s latency per image, "
        + (f"enforcing {args.api_rate_limit} with a 60 s lockout, app limiter {args.app_rate_limit};"
           if args.api_rate_limit else "no rate limit;"),
        f"WORKER_CONCURRENCY={args.concurrency}; {warmup}; ideal = latency × ceil(prompts / concurrency)"
        + (", or latency + prompts / rate if longer;" if args.api_rate_limit else ";"),
        f"poll figures are the mean of {args.poll_requests} test-client requests.\n",
    ]))
    print(report_tables(results))


# ----- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", default="8,32,128", help="comma-separated batch sizes (default 8,32,128)")
    parser.add_argument("--latency", type=float, default=1.0, help="fake API seconds per image (default 1.0)")
    parser.add_argument("--concurrency", type=int, default=8, help="WORKER_CONCURRENCY (default 8)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="time the workers' first jobs too (no untimed warm-up batch)")
    parser.add_argument("--poll-requests", type=int, default=2000, help="requests per poll timing (default 2000)")
    parser.add_argument("--api-rate-limit", default="", help="limit the fake API enforces, e.g. 150/10 (default none)")
    parser.add_argument("--app-rate-limit", default="140/10", help="STABILITY_RATE_LIMIT for the workers (140/10)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(n) for n in args.prompts.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--prompts must be comma-separated integers, got {args.prompts!r}")
    if not args.sizes or min(args.sizes) < 1 or args.concurrency < 1 or args.latency <= 0:
        parser.error("batch sizes and --concurrency must be at least 1, --latency above 0")
    return args



def accounts_app(tmp: Path, database_url: str, redis_url: str, fake_url: str, concurrency: int,
                 emails: list[str]) -> Flask:
    """An accounts-mode app on a migrated throwaway database, with these accounts, calling the fake API."""
    app = create_app(TestConfig(
        str(tmp / "instance"), SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url, AUTH_MODE="accounts",
        MEDIA_ROOT=str(tmp / "media"), STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake_url,
        WORKER_CONCURRENCY=concurrency, STABILITY_RATE_LIMIT="1000/1",
    ))
    with app.app_context():
        upgrade()
        for email in emails:
            create_user(email, password="benchmark password")
    return app

def dispose_engine(app: Flask) -> None:
    """Close this process's database connections, so dropping the database finds none."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def worker_environment(app: Flask) -> dict[str, str]:
    """The environment under which worker.py's create_app() reads the same settings as the app here."""
    config = app.config
    return {
        **os.environ,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "STABILITY_API_KEY": config["STABILITY_API_KEY"],
        "STABILITY_API_BASE_URL": config["STABILITY_API_BASE_URL"],
        "MEDIA_ROOT": config["MEDIA_ROOT"],
        "WORKER_CONCURRENCY": str(config["WORKER_CONCURRENCY"]),
        "STABILITY_RATE_LIMIT": str(config["STABILITY_RATE_LIMIT"]),
        "SECRET_KEY": "bench-secret",
        "PYTHONUNBUFFERED": "1",
    }


def benchmark(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> tuple[list[BatchResult], tuple[str, ...]]:
    """Bring the stack up (each piece registered on `cleanup` for teardown) and time every batch size."""
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="imagegen-bench-")))
    database_url = cleanup.enter_context(throwaway_database(tmp))
    redis_url = cleanup.enter_context(private_redis(tmp / "redis"))
    prompts = [f"benchmark image {i}: a lighthouse at dusk" for i in range(max(*args.sizes, args.concurrency))]
    say(f"encoding {len(prompts)} fake images and starting the fake API")
    api_limit = tuple(parse_rate_limit(args.api_rate_limit)) if args.api_rate_limit else None
    fake = warmed_fake(prompts, args.latency, api_limit)
    cleanup.callback(fake.stop)
    app = create_app(TestConfig(
        str(tmp / "instance"), SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url,
        MEDIA_ROOT=str(tmp / "media"), STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
        WORKER_CONCURRENCY=args.concurrency, STABILITY_RATE_LIMIT=args.app_rate_limit,
    ))
    with app.app_context():
        upgrade()
    # Unwound after the worker pool stops and before the database is dropped.
    cleanup.callback(dispose_engine, app)
    facts = backend_facts(app)
    log_path = tmp / "worker.log"
    say(f"starting worker.py with {args.concurrency} workers ({facts[0]}; {facts[1]}; load {facts[2]})")
    process = cleanup.enter_context(worker_pool(worker_environment(app), log_path))
    with app.app_context():
        # Slots are threads: worker.py registers one RQ worker per process (WORKER_PROCESSES).
        wait_for_workers(app, process, min(app.config["WORKER_PROCESSES"], args.concurrency))
    app_limit = parse_rate_limit(args.app_rate_limit)
    stack = Stack(app=app, worker=process, fake=fake, latency=args.latency, concurrency=args.concurrency,
                  rate=app_limit.requests / app_limit.seconds if api_limit else None)
    if args.warmup:
        # Each worker's first job pays one-off costs (HTTP connection, lazy imports, SQL compilation);
        # one untimed job per worker keeps those out of the steady-state numbers.
        say(f"untimed warm-up batch of {args.concurrency}")
        run_batch(stack, prompts[:args.concurrency])
    results = []
    for size in args.sizes:
        say(f"batch of {size} (ideal {ideal_seconds(stack, size):.1f} s)")
        batch_id, result = run_batch(stack, prompts[:size])
        say(f"  {result.wall:.2f} s; timing the poll endpoint")
        unchanged, rendered = time_poll(app, batch_id, args.poll_requests)
        results.append(replace(result, poll_unchanged_us=unchanged, poll_render_us=rendered))
    return results, facts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; everything started is stopped on any exit."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # A plain SIGTERM would skip the clean-up below and leave the worker pool and Redis running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as cleanup:
        try:
            results, facts = benchmark(args, cleanup)
        except RuntimeError as error:
            say(f"error: {error}")
            return 1
    print_report(results, args, facts, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
