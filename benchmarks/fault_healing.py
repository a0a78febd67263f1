"""How each fault looks on the cards and how long it takes to heal, with the default reaper settings.

Run: `.venv/bin/python benchmarks/fault_healing.py [--faults kill,redis,database,hang,429,402]`. It uses the
fault tests' real stack (tests/test_faults.py): `python worker.py`, its own redis-server, a throwaway
database (PostgreSQL on DATABASE_URL, else SQLite) and the fake API. Unlike the tests it keeps production's
defaults: REAPER_STALE_SECONDS 60, REAPER_INTERVAL_SECONDS 15, 3 attempts, 2 s retry base, 60 s lockout.
The worker-kill case is issue 8's "Done when": 8 prompts at 4 s latency on 8 workers, the whole process tree
killed with SIGKILL, `python worker.py` started again; every card must be final within 90 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
os.chdir(REPO_ROOT)

from fake_stability import FakeStability  # noqa: E402  (needs the path above)
from redis import Redis  # noqa: E402
from test_faults import KEY, Infra, Stack, fault_infra, running_stack, terminate_connections  # noqa: E402

from app.generations.queue import PAUSE_KEY  # noqa: E402
from app.models import FINAL_STATUSES, Generation  # noqa: E402

DEFAULTS = {"REAPER_STALE_SECONDS": "60", "REAPER_INTERVAL_SECONDS": "15", "STABILITY_RETRY_BASE_DELAY": "2",
            "STABILITY_TIMEOUT": "5,120", "STABILITY_LOCKOUT_SECONDS": "60", "STABILITY_MAX_ATTEMPTS": "3"}
DONE_WHEN_SECONDS = 90.0
POLL_SECONDS = 0.25


@dataclass
class Measured:
    """One fault's row of the table."""

    fault: str
    seen: list[str]
    heal_seconds: float
    note: str = ""


def card_label(g: Generation) -> str:
    """The card's state line, as templates/batches/_state_label.html and _card.html word it."""
    if g.status == "queued":
        tries = f" ({g.attempts + 1}/{g.max_attempts})" if g.error and g.attempts else ""
        return f"{g.error}{tries} · Queued" if g.error else "Queued"
    if g.status == "running":
        label = f"Retrying ({g.attempts}/{g.max_attempts})" if g.attempts > 1 else "Generating"
        return f"{label} · {g.error}" if g.error else label
    label = {"succeeded": "Done", "filtered": "Filtered", "failed": "Failed", "canceled": "Canceled"}[g.status]
    return f"{label}: {g.error}" if g.status == "failed" else label


def watch_until_final(stack: Stack, since: float, timeout: float) -> tuple[list[str], float]:
    """Poll the cards until all are final; return each label with when it showed, and the seconds since `since`."""
    shown: dict[str, list[float]] = {}  # label -> [first, last] seconds after the fault, in order of appearance
    deadline = time.monotonic() + timeout
    while True:
        rows, now = stack.rows(), time.monotonic() - since
        for label in (card_label(g) for g in rows):
            shown.setdefault(label, [now, now])[1] = now
        if all(g.status in FINAL_STATUSES for g in rows):
            return [f"{label} ({first:.0f}–{last:.0f} s)" for label, (first, last) in shown.items()], now
        if time.monotonic() > deadline:
            raise RuntimeError(f"not healed within {timeout:.0f} s; cards: {list(shown)}\n{stack.worker_log()[-3000:]}")
        time.sleep(POLL_SECONDS)


def worker_kill(infra: Infra, tmp: Path) -> Measured:
    """Issue 8's check: SIGKILL the pool's whole tree mid-call, start `python worker.py` again."""
    with FakeStability(api_key=KEY, latency=4.0) as fake, \
            running_stack(infra, tmp, fake, concurrency=8, **DEFAULTS) as stack:
        stack.submit([f"done when {i}" for i in range(8)])
        stack.wait_until(lambda: fake.in_flight == 8, 60, "all eight calling the API")
        stack.kill_worker()
        killed = time.monotonic()
        stack.start_worker()
        seen, healed = watch_until_final(stack, killed, 180)
    verdict = "PASS" if healed <= DONE_WHEN_SECONDS else "FAIL"
    return Measured("worker SIGKILL mid-call (8 prompts, 4 s API, 8 workers)", seen, healed,
                    f"issue 8 'Done when' (≤ {DONE_WHEN_SECONDS:.0f} s): {verdict}")


def redis_restart(infra: Infra, tmp: Path) -> Measured:
    """Stop Redis for 5 s mid-batch and start it again empty."""
    with FakeStability(api_key=KEY, latency=2.0) as fake, \
            running_stack(infra, tmp, fake, concurrency=4, **DEFAULTS) as stack:
        stack.submit([f"redis restart {i}" for i in range(16)])
        stack.wait_until(lambda: stack.count("succeeded") >= 4, 60, "the first images")
        infra.redis.stop()
        stopped = time.monotonic()
        time.sleep(5)
        infra.redis.start()
        seen, healed = watch_until_final(stack, stopped, 180)
    return Measured("Redis down 5 s, back empty (16 prompts, 2 s API, 4 workers)", seen, healed,
                    "time includes the 5 s outage and the remaining work")


def database_drop(infra: Infra, tmp: Path) -> Measured:
    """Terminate every connection to the database while the workers call the API."""
    if not infra.database_url.startswith("postgresql"):
        return Measured("PostgreSQL connections dropped", ["(skipped: needs DATABASE_URL)"], 0.0)
    with FakeStability(api_key=KEY, latency=2.0) as fake, \
            running_stack(infra, tmp, fake, concurrency=4, **DEFAULTS) as stack:
        stack.submit([f"database drop {i}" for i in range(8)])
        stack.wait_until(lambda: fake.in_flight == 4, 60, "all four calling the API")
        terminate_connections(infra.database_url)
        dropped = time.monotonic()
        seen, healed = watch_until_final(stack, dropped, 120)
    return Measured("PostgreSQL connections terminated (8 prompts, 2 s API, 4 workers)", seen, healed,
                    "time is the remaining work: nothing waits for a repair")


def api_hang(infra: Infra, tmp: Path) -> Measured:
    """The API accepts the request and never answers; a short read timeout stands in for the 120 s default."""
    settings = {**DEFAULTS, "STABILITY_TIMEOUT": "5,10"}
    with FakeStability(api_key=KEY) as fake, running_stack(infra, tmp, fake, concurrency=2, **settings) as stack:
        started = time.monotonic()
        stack.submit(["hanging api [hang]"])
        seen, healed = watch_until_final(stack, started, 120)
    return Measured("API never answers (read timeout 10 s here)", seen, healed,
                    "3 attempts × read timeout + backoff; with the default 120 s read timeout about 6 min")


def rate_limit_lockout(infra: Infra, tmp: Path) -> Measured:
    """The API's own limit trips (4 requests, then a 60 s lockout) while the app thinks it may send more."""
    settings = {**DEFAULTS, "STABILITY_RATE_LIMIT": "100/10"}
    with FakeStability(api_key=KEY, latency=0.5, rate_limit=(4, 60.0), lockout=60.0) as fake, \
            running_stack(infra, tmp, fake, concurrency=2, **settings) as stack:
        stack.submit([f"rate limited {i}" for i in range(8)])
        stack.wait_until(lambda: fake.count_429 > 0, 60, "the first 429")
        first_429 = time.monotonic()
        seen, healed = watch_until_final(stack, first_429, 180)
    return Measured("429 lockout mid-batch (API locks out 60 s)", seen, healed,
                    f"{fake.count_429} request(s) met the lockout; the rest waited it out")


def out_of_credits(infra: Infra, tmp: Path) -> Measured:
    """The account runs dry after three images; later topped up, with no one running `flask queue resume`."""
    with FakeStability(api_key=KEY, latency=0.5, credits=9.0) as fake, \
            running_stack(infra, tmp, fake, concurrency=2, **DEFAULTS) as stack:
        stack.submit([f"out of credits {i}" for i in range(8)])
        redis = Redis.from_url(infra.redis.url)
        stack.wait_until(lambda: redis.get(PAUSE_KEY) is not None, 60, "the queue pausing")
        time.sleep(5)  # a while paused, for the cards to show it
        fake.credits = 1000.0
        topped_up = time.monotonic()
        seen, healed = watch_until_final(stack, topped_up, 120)
    return Measured("402 out of credits, then topped up", seen, healed,
                    "time from the top-up: the reaper's balance check resumes within one interval (15 s); "
                    "`flask queue resume` resumes at once")


FAULTS: dict[str, Callable[[Infra, Path], Measured]] = {
    "kill": worker_kill, "redis": redis_restart, "database": database_drop, "hang": api_hang,
    "429": rate_limit_lockout, "402": out_of_credits,
}


def print_table(results: list[Measured]) -> None:
    """Markdown table: fault, what the cards show, time to heal."""
    print("\n| fault | what the cards show (label, seconds after the fault it showed) | healed after | note |")
    print("|---|---|---:|---|")
    for r in results:
        print(f"| {r.fault} | {' → '.join(r.seen)} | {r.heal_seconds:.1f} s | {r.note} |")


def main() -> None:
    """Run the chosen faults one after another on one database and Redis, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, from {', '.join(FAULTS)}")
    chosen = parser.parse_args().faults.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="fault-healing-") as tmp, fault_infra(Path(tmp)) as infra:
        for name in chosen:
            print(f"measuring {name} ...", flush=True)
            run_dir = Path(tmp) / f"fault-{name}"
            run_dir.mkdir()
            results.append(FAULTS[name](infra, run_dir))
            print(f"  healed after {results[-1].heal_seconds:.1f} s", flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
