#!/usr/bin/env python3
"""Fair turns between users: user A queues 200 prompts, user B one prompt 2 s later; how long does B wait?

Runs the real stack: a throwaway database, a private Redis, the fake Stability API answering in
--latency seconds, and `python worker.py` with --concurrency workers. Reports B's wait (submit to start,
and submit to image) against one API latency, and A's total time against the ideal ceil(N / slots) × latency.

    .venv/bin/python benchmarks/fairness.py [--prompts 200] [--concurrency 8] [--latency 1] [--delay 2]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

import batch_throughput as bench  # noqa: E402  (puts the app and the test fake on the path)
import sqlalchemy as sa  # noqa: E402
from conftest import private_redis, throwaway_database  # noqa: E402

from app.extensions import db  # noqa: E402
from app.generations.lifecycle import create_batch  # noqa: E402
from app.models import FINAL_STATUSES, Generation  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=200, help="user A's batch size")
    parser.add_argument("--concurrency", type=int, default=8, help="worker slots")
    parser.add_argument("--latency", type=float, default=1.0, help="API seconds per image")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds after A's submit that B submits")
    return parser.parse_args(argv)


def submit(app, email: str, prompts: list[str]) -> tuple[int, float]:  # noqa: ANN001
    """Create a batch for the user as the form would; return its id and the submit time."""
    with app.test_request_context():
        from app.accounts.users import find_user

        submitted = time.time()
        return create_batch(find_user(email), prompts).id, submitted


def unfinished(app, batch_ids: list[int]) -> int:  # noqa: ANN001
    """How many generations of these batches are not final yet."""
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Generation).where(
            Generation.batch_id.in_(batch_ids), Generation.status.not_in(FINAL_STATUSES)))


def times(app, batch_id: int) -> tuple[float, float, float]:  # noqa: ANN001
    """First start, first finish and last finish of a batch, as epoch seconds."""
    with app.app_context():
        rows = db.session.execute(sa.select(Generation.started_at, Generation.finished_at)
                                  .where(Generation.batch_id == batch_id)).all()
    starts = [s.timestamp() for s, _ in rows if s]
    ends = [f.timestamp() for _, f in rows if f]
    return min(starts), min(ends), max(ends)


def run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> dict[str, float]:
    """Bring up the stack, submit A then B, wait for both, measure."""
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="imagegen-fair-")))
    database_url = cleanup.enter_context(throwaway_database(tmp))
    redis_url = cleanup.enter_context(private_redis(tmp / "redis"))
    prompts_a = [f"user A image {i}: a lighthouse at dusk" for i in range(args.prompts)]
    prompt_b = "user B's only image: a fox in the snow"
    fake = bench.warmed_fake([*prompts_a, prompt_b], args.latency, None)
    cleanup.callback(fake.stop)
    app = bench.accounts_app(tmp, database_url, redis_url, fake.base_url, args.concurrency,
                             ["a@example.com", "b@example.com"])
    cleanup.callback(bench.dispose_engine, app)
    log_path = tmp / "worker.log"
    process = cleanup.enter_context(bench.worker_pool(bench.worker_environment(app), log_path))
    with app.app_context():
        bench.wait_for_workers(app, process, args.concurrency)
    bench.say(f"A submits {args.prompts}; B submits 1 after {args.delay:g} s")
    batch_a, submitted_a = submit(app, "a@example.com", prompts_a)
    time.sleep(args.delay)
    batch_b, submitted_b = submit(app, "b@example.com", [prompt_b])
    deadline = time.monotonic() + 60 + args.prompts * args.latency
    while unfinished(app, [batch_a, batch_b]) and time.monotonic() < deadline:
        time.sleep(0.2)
    b_start, b_done, _ = times(app, batch_b)
    _, _, a_done = times(app, batch_a)
    ideal_a = math.ceil((args.prompts + 1) / args.concurrency) * args.latency
    return {"b_wait_start": b_start - submitted_b, "b_wait_image": b_done - submitted_b,
            "a_total": a_done - submitted_a, "a_ideal": ideal_a}


def main(argv: list[str] | None = None) -> int:
    """Run once and print a Markdown table."""
    args = parse_args(argv)
    with contextlib.ExitStack() as cleanup:
        result = run(args, cleanup)
    print(f"\n{args.prompts} prompts from A, 1 from B {args.delay:g} s later; {args.concurrency} slots, "
          f"{args.latency:g} s API latency\n")
    print("| measure | seconds | against |")
    print("|---|---|---|")
    print(f"| B: submit → its image starts | {result['b_wait_start']:.2f} | one latency = {args.latency:g} s |")
    print(f"| B: submit → its image is done | {result['b_wait_image']:.2f} | two latencies = {2 * args.latency:g} s |")
    print(f"| A: submit → last image done | {result['a_total']:.2f} | ideal {result['a_ideal']:.1f} s "
          f"(ratio {result['a_total'] / result['a_ideal']:.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
