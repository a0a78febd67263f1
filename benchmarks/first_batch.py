#!/usr/bin/env python3
"""A user's first batch with every slot free: how long from the submit to the API receiving its first call?

Runs the real stack as benchmarks/fairness.py does: a throwaway database, a private Redis, the fake Stability
API answering in --latency seconds, and `python worker.py` with --concurrency slots, warmed by one untimed batch.
Each of --users users (accounts made up front) then submits, one after another, a batch of --images images at a
random moment of the workers' wait; once it is final, the same user's second batch follows the same way. The
second batch goes through the same code with the user's queue already listened to: it is the ideal the first is
compared with. Reported: submit → the fake API receiving the batch's first call, and submit → the batch's last
image stored, each as p50 / p95 / max over the users.

    .venv/bin/python benchmarks/first_batch.py [--users 30] [--images 1] [--latency 0.2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

import batch_throughput as bench  # noqa: E402  (puts the app and the test fake on the path)
import fairness  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import throughput  # noqa: E402
from conftest import private_redis, throwaway_database  # noqa: E402
from flask import Flask  # noqa: E402

from app.extensions import db  # noqa: E402
from app.models import Generation  # noqa: E402
from app.worker.pool import DEQUEUE_SECONDS  # noqa: E402

TARGET_MS = 100.0
BATCH_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Timing:
    """One batch: seconds from its submit to create_batch returning, to the API's first call, to its last image."""

    enqueued: float
    first_call: float
    done: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=30, help="users, each submitting a first and a second batch")
    parser.add_argument("--images", type=int, default=1, help="images (prompts) per batch")
    parser.add_argument("--latency", type=float, default=0.2, help="API seconds per image")
    parser.add_argument("--concurrency", type=int, default=8, help="WORKER_CONCURRENCY")
    parser.add_argument("--spread", type=float, default=DEQUEUE_SECONDS,
                        help="each submit waits a random 0 to SPREAD s first, so it lands anywhere in a worker's wait")
    parser.add_argument("--seed", type=int, default=20, help="seed of those random waits")
    parser.add_argument("--max-load", type=float, default=2.0, help="wait while the load average is above this")
    parser.add_argument("--load-tries", type=int, default=10, help="minutes to wait for the load to drop")
    args = parser.parse_args(argv)
    if min(args.users, args.images, args.concurrency) < 1 or args.latency <= 0:
        parser.error("--users, --images and --concurrency must be at least 1, --latency above 0")
    return args


def prompts_of(user: int, batch: str, images: int) -> list[str]:
    """Prompts no other batch has, so the fake's log tells which batch a call came from."""
    return [f"user {user}, {batch} batch, image {n}: a lighthouse at dusk" for n in range(images)]


def first_arrival(fake, prompts: list[str], deadline: float) -> float:  # noqa: ANN001
    """When the fake received the first call for one of these prompts (it logs a call once it has answered)."""
    wanted = set(prompts)
    while time.monotonic() < deadline:
        arrivals = [r.arrived_at for r in fake.generate_requests if r.form.get("prompt") in wanted]
        if len(arrivals) == len(wanted):
            return min(arrivals)
        time.sleep(0.02)
    raise RuntimeError(f"the fake API did not see every call for {prompts[0]!r} in time")


def last_stored(app: Flask, batch_id: int) -> float:
    """The epoch second the batch's last image was stored, once every row is final."""
    deadline = time.monotonic() + BATCH_TIMEOUT_SECONDS
    while fairness.unfinished(app, [batch_id]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch_id} not final after {BATCH_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.02)
    with app.app_context():
        finished = db.session.scalars(sa.select(Generation.finished_at).where(Generation.batch_id == batch_id))
        return max(bench.as_utc(moment).timestamp() for moment in finished)


def timed_batch(app: Flask, fake, email: str, prompts: list[str], pause: float) -> Timing:  # noqa: ANN001
    """Wait `pause`, submit the batch as the form would, and time it until its last image is stored."""
    time.sleep(pause)
    started = time.monotonic()  # the fake stamps arrivals with the same clock, in this process
    batch_id, submitted = fairness.submit(app, email, prompts)
    enqueued = time.monotonic() - started
    arrived = first_arrival(fake, prompts, started + BATCH_TIMEOUT_SECONDS)
    return Timing(enqueued=enqueued, first_call=arrived - started, done=last_stored(app, batch_id) - submitted)


def stack(args: argparse.Namespace, cleanup: contextlib.ExitStack, prompts: list[str]):  # noqa: ANN201
    """The running app, fake API and worker.py, with one account per user and one for the warm-up."""
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="imagegen-first-")))
    database_url = cleanup.enter_context(throwaway_database(tmp))
    redis_url = cleanup.enter_context(private_redis(tmp / "redis"))
    fake = bench.warmed_fake(prompts, args.latency, None)
    cleanup.callback(fake.stop)
    app = bench.accounts_app(tmp, database_url, redis_url, fake.base_url, args.concurrency,
                             [f"user{user}@example.com" for user in range(args.users + 1)])
    cleanup.callback(bench.dispose_engine, app)
    process = cleanup.enter_context(bench.worker_pool(bench.worker_environment(app), tmp / "worker.log"))
    with app.app_context():
        bench.wait_for_workers(app, process, args.concurrency)
    return app, fake


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> tuple[list[Timing], list[Timing], tuple]:
    """Warm the workers with user 0's batch, then time every other user's first and second batch."""
    warm_up = prompts_of(0, "warm-up", args.concurrency)
    batches = {(user, kind): prompts_of(user, kind, args.images)
               for user in range(1, args.users + 1) for kind in ("first", "second")}
    app, fake = stack(args, cleanup, [*warm_up, *(p for prompts in batches.values() for p in prompts)])
    facts = bench.backend_facts(app)
    # Each worker process's first jobs pay one-off costs (connections, lazy imports); they are not what is timed.
    timed_batch(app, fake, "user0@example.com", warm_up, 0.0)
    waits = random.Random(args.seed)
    first, second = [], []
    for user in range(1, args.users + 1):
        for kind, results in (("first", first), ("second", second)):
            timing = timed_batch(app, fake, f"user{user}@example.com", batches[user, kind],
                                 waits.uniform(0, args.spread))
            results.append(timing)
        bench.say(f"user {user}: first call after {first[-1].first_call * 1000:.0f} ms "
                  f"(second batch {second[-1].first_call * 1000:.0f} ms)")
    return first, second, facts


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at least `share` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def row(what: str, values: list[float], ideal: list[float]) -> str:
    """One Markdown row in milliseconds: p50, p95, max, and p50 and p95 as ratios to the ideal's."""
    p50, p95, top = (percentile(values, s) * 1000 for s in (0.5, 0.95, 1.0))
    ratios = (f"{percentile(values, s) / percentile(ideal, s):.2f}" for s in (0.5, 0.95))
    return f"| {what} | {p50:.0f} | {p95:.0f} | {top:.0f} | {' / '.join(ratios)} |"


def command_line(argv: list[str]) -> str:
    """The command as it was run, with the environment that changes its backends."""
    env = " ".join(f"{k}={bench.redact(os.environ[k])}" for k in ("DATABASE_URL", "REDIS_URL") if os.environ.get(k))
    return f"{env + ' ' if env else ''}.venv/bin/python benchmarks/first_batch.py {' '.join(argv)}".strip()


def report(args: argparse.Namespace, argv: list[str], first: list[Timing], second: list[Timing],
           facts: tuple) -> str:
    """The paste-ready report: command, setting, one table."""
    database, redis_kind, load = facts
    ideal_done = args.latency * math.ceil(args.images / args.concurrency)
    first_calls, second_calls = [t.first_call for t in first], [t.first_call for t in second]
    lines = [
        f"```\n{command_line(argv)}\n```\n",
        f"{args.users} users, {args.images} image(s) per batch, {args.concurrency} slots, {args.latency:g} s API "
        f"latency, each submit after a random 0–{args.spread:g} s; load average {load} at start; {database}; "
        f"{redis_kind}. Ideal = the same user's second batch (its queue already listened to); for the batch's "
        f"last image, the API's latency × ⌈images / slots⌉ = {ideal_done:g} s.\n",
        "| submit → … | p50 (ms) | p95 (ms) | max (ms) | ratio to ideal, p50 / p95 |",
        "|---|---:|---:|---:|---:|",
        row("create_batch returns (rows committed, jobs queued), first batch", [t.enqueued for t in first],
            [t.enqueued for t in second]),
        row("first call at the API, first batch", first_calls, second_calls),
        row("first call at the API, second batch", second_calls, second_calls),
        row("last image stored, first batch", [t.done for t in first], [ideal_done]),
        row("last image stored, second batch", [t.done for t in second], [ideal_done]),
        "",
        f"First batch's p95 to the API's first call: {percentile(first_calls, 0.95) * 1000:.0f} ms "
        f"(target ≤ {TARGET_MS:.0f} ms).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run once and print the report; everything started is stopped on any exit."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # Every millisecond here is CPU time on two shared cores: others' work shows in the figures.
    throughput.wait_for_quiet_machine(args.max_load, args.load_tries)
    with contextlib.ExitStack() as cleanup:
        try:
            first, second, facts = run(args, cleanup)
        except RuntimeError as error:
            bench.say(f"error: {error}")
            return 1
    print(report(args, argv, first, second, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
