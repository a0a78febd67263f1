"""Issue 11's throughput table, through the real stack: gunicorn, `python worker.py`, the fake API, PostgreSQL, Redis.

Run from the repository root with the project's virtualenv (about three minutes):

    .venv/bin/python benchmarks/throughput.py [--scenarios 64-small,64-full,150-small,150-full] [--json results.json]

It starts a throwaway PostgreSQL database (on DATABASE_URL's server, by default postgresql://root@127.0.0.1/postgres),
a private Redis (an embedded redis-server unless REDIS_URL is set), the loopback fake of Stability's API (in this
process, enforcing 150 requests per 10 s, answering with images encoded once up front), gunicorn serving the app
with AUTH_MODE=none, and for each scenario a fresh `python worker.py` with WORKER_CONCURRENCY set to it. Each
scenario submits its batch through the home page's form, as a browser does, while 20 simulated generate pages poll
`/generate/<id>/status?seen=…` every second with their own seen token. It reports, per scenario:

- wall time from the submission to every row final, against the ideal: the latency bound
  (latency × ⌈N / WORKER_CONCURRENCY⌉) or the rate-limit bound (latency + window × ⌊(N − 1) / limit⌋ for the app's
  STABILITY_RATE_LIMIT), whichever is higher;
- the worker tier's peak PSS (Pss of /proc/<pid>/smaps_rollup summed over worker.py's process group, every 0.2 s);
- CPU per image (utime + stime from /proc over each tier's process group, before and after, over the images);
- the 204 poll: its round trip through gunicorn under load, and its server-side cost through the Flask test client
  (mean µs, statements per request counted with a SQLAlchemy event listener, and their query plans);
- 429 answers from the fake (must be 0), and the most requests the fake served at once.

Then (unless --no-profile) it samples the worker tier with py-spy during one more, untimed batch of full-size
PNGs and sorts the samples into decode, thumbnail, metadata, file write, database, HTTP, RQ…, and profiles
`app.worker.jobs._store` in-process with cProfile. Everything it starts is stopped and dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import math
import os
import platform
import pstats
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, so neither the app package nor the test fake is on the path yet.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]
os.environ.setdefault("DATABASE_URL", "postgresql://root@127.0.0.1/postgres")

import fake_stability  # noqa: E402  (needs the path above)
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from conftest import private_redis, throwaway_database  # noqa: E402
from flask import Flask  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from PIL import Image, ImageChops  # noqa: E402
from rq import Worker  # noqa: E402

from app import create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import FINAL_STATUSES, Generation, Status  # noqa: E402
from app.processes.group import ProcessGroup, free_port, http_ok  # noqa: E402
from app.providers.rate_limit import RateLimit, parse_rate_limit  # noqa: E402

API_KEY = "bench-key"
METRICS_TOKEN = "bench-metrics"
API_LIMIT = (150, 10.0)  # what the fake enforces, as the real API does
PAGES = 20  # simulated generate pages polling each batch
PAGE_POLL_SECONDS = 1.0
SAMPLE_SECONDS = 0.2
FINAL_POLL_SECONDS = 0.02
READY_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0
WARM_UP_LATENCY = 0.2
PHOTO_VARIANTS = 4
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent
BENCH_APP_NAME = "throughput-benchmark"


def say(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Scenario:
    """One row of the table: a batch of `prompts`, WORKER_CONCURRENCY slots, the fake's latency and image."""

    name: str
    prompts: int
    concurrency: int
    latency: float
    image: str  # "small": the fake's own flat 256x256 PNG; "full": photo-like 1024x1024 PNGs of ~1.5 MB

    @property
    def label(self) -> str:
        """How the table names it."""
        size = "256×256 flat PNG" if self.image == "small" else "1024×1024 photo-like PNG"
        return f"{self.prompts} in flight, {self.latency:g} s, {size}"


SCENARIOS = {
    "64-small": Scenario("64-small", 64, 64, 2.0, "small"),
    "64-full": Scenario("64-full", 64, 64, 2.0, "full"),
    "150-small": Scenario("150-small", 150, 150, 8.0, "small"),
    "150-full": Scenario("150-full", 150, 150, 8.0, "full"),
}


# ----- images the fake answers with -----------------------------------------------------------------


def photo_like(seed: int, size: int = 1024) -> Image.Image:
    """Smooth colour fields, mid-scale texture and fine grain: compresses like a generated photo (~1.6 MB PNG)."""
    rnd = random.Random(seed)
    base = Image.frombytes("RGB", (8, 8), rnd.randbytes(8 * 8 * 3)).resize((size, size), Image.Resampling.BICUBIC)
    texture = Image.frombytes("RGB", (size // 8, size // 8), rnd.randbytes((size // 8) ** 2 * 3))
    base = Image.blend(base, texture.resize((size, size), Image.Resampling.BICUBIC), 0.3)
    grain = Image.effect_noise((size, size), 2.0)
    return ImageChops.add(base, Image.merge("RGB", [grain, grain, grain]), offset=-128)


def encoded_images() -> dict[str, list[bytes]]:
    """Every answer the fake gives, encoded once now, so its own CPU does not weigh on the timed batches."""
    small = fake_stability.render_image
    small = getattr(small, "__wrapped__", small)
    flat = [small(256, 256, "png", hashlib.sha256(bytes([i])).digest(), False) for i in range(PHOTO_VARIANTS)]
    full = []
    for seed in range(PHOTO_VARIANTS):
        buffer = io.BytesIO()
        photo_like(seed).save(buffer, "PNG")  # Pillow's defaults: zlib level 6, adaptive filters, like most encoders
        full.append(buffer.getvalue())
    return {"small": flat, "full": full}


class ServedImages:
    """Replaces the fake's renderer: whatever size is asked for, the answer is one of the current scenario's files."""

    def __init__(self, images: dict[str, list[bytes]]) -> None:
        self.images = images
        self.kind = "small"

    def __call__(self, width: int, height: int, fmt: str, digest: bytes, filtered: bool) -> bytes:
        """The pre-encoded file for this prompt's digest."""
        variants = self.images[self.kind]
        return variants[digest[0] % len(variants)]


# ----- processes and /proc ---------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """Pids of live processes in a process group (Linux /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Field 5 is the group; split after the ')' that ends the command name, which may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def cpu_ticks(pid: int) -> tuple[int, int]:
    """CPU time of one process in clock ticks: (user + system, system); zeros once it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]), int(fields[12])
    return 0, 0


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def pss_kib(pid: int) -> int:
    """Proportional set size of one process (shared pages split between their users), in KiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class TierSampler(threading.Thread):
    """Samples a process group every 0.2 s: the peak of its summed PSS, and each member's CPU time seen so far."""

    def __init__(self, pgid: int, memory: bool = True) -> None:
        super().__init__(daemon=True, name=f"sampler-{pgid}")
        self.pgid, self.memory = pgid, memory
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._ticks: dict[int, tuple[int, int]] = {}  # kept after a process exits, so its CPU still counts
        self.peak_kib = 0
        self.members = 0
        self.slowest_interval = SAMPLE_SECONDS

    def run(self) -> None:
        """Sample until stopped."""
        pause = SAMPLE_SECONDS
        while not self._halt.wait(pause):
            started = time.perf_counter()
            self.sample()
            # Reading smaps walks page tables: with a hundred processes (the old pool) sample less often, so this
            # script never takes more than a fifth of a CPU from what it measures.
            pause = max(SAMPLE_SECONDS, 4 * (time.perf_counter() - started))
            self.slowest_interval = max(self.slowest_interval, pause)

    def sample(self) -> int:
        """One sample; returns the group's PSS now, in KiB."""
        with self._lock:
            pids = group_members(self.pgid)
            total = sum(pss_kib(pid) for pid in pids) if self.memory else 0
            for pid in pids:
                self._ticks[pid] = max(self._ticks.get(pid, (0, 0)), cpu_ticks(pid))
            self.peak_kib, self.members = max(self.peak_kib, total), len(pids)
            return total

    def cpu_seconds(self, system_only: bool = False) -> float:
        """CPU the group has used so far (a fresh sample first); with system_only, the kernel's part."""
        self.sample()
        with self._lock:
            return sum(ticks[1 if system_only else 0] for ticks in self._ticks.values()) / CLOCK_TICKS

    def reset_peak(self) -> None:
        """Start a new peak from now."""
        with self._lock:
            self.peak_kib = 0

    def stop(self) -> None:
        """End the sampling thread."""
        self._halt.set()


def spawn(name: str, args: list[str], env: dict[str, str], log_path: Path) -> ProcessGroup:
    """Start a child in its own process group (so one killpg reaches its children), logging to log_path."""
    return ProcessGroup(name, args, env=env, cwd=REPO_ROOT, log=log_path, append=True).start()


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log file, for error messages."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# ----- the stack -------------------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything the scenarios run against."""

    app: Flask  # in this process, on the same database and Redis: for the finality check and test-client timing
    env: dict[str, str]
    base_url: str
    web: ProcessGroup
    web_tier: TierSampler
    fake: fake_stability.FakeStability
    served: ServedImages
    tmp: Path
    profile: dict[str, float] = field(default_factory=dict)  # py-spy's CPU per image by part, once taken

    @property
    def redis(self):  # noqa: ANN201
        """The app's Redis connection."""
        from redis import Redis

        return Redis.from_url(self.app.config["REDIS_URL"])


def stack_environment(database_url: str, redis_url: str, fake_url: str, tmp: Path) -> dict[str, str]:
    """What gunicorn and worker.py are started with: the same settings an operator would export."""
    metrics_dir = tmp / "prometheus"
    metrics_dir.mkdir()
    return {
        **os.environ,
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "MEDIA_ROOT": str(tmp / "media"),
        "STABILITY_API_KEY": API_KEY, "STABILITY_API_BASE_URL": fake_url,
        "SECRET_KEY": "bench-secret", "AUTH_MODE": "none", "MAX_PROMPTS_PER_BATCH": "500",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "METRICS_TOKEN": METRICS_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }


def in_process_app(env: dict[str, str], tmp: Path) -> Flask:
    """The app in this process, configured like the stack's, migrated."""
    app = create_app(TestConfig(
        str(tmp / "instance"), SQLALCHEMY_DATABASE_URI=env["DATABASE_URL"], REDIS_URL=env["REDIS_URL"],
        MEDIA_ROOT=env["MEDIA_ROOT"], STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=env["STABILITY_API_BASE_URL"],
        MAX_PROMPTS_PER_BATCH=500,
        # Named, so its own queries are not counted as the stack's database work.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": {"application_name": BENCH_APP_NAME}},
    ))
    with app.app_context():
        upgrade()
        db.session.remove()
    return app


def start_web(env: dict[str, str], tmp: Path) -> tuple[ProcessGroup, str]:
    """Start gunicorn as the README deploys it, sized for this machine: 2 processes × 4 threads."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    web = spawn("gunicorn", [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                             "wsgi:app"], env, tmp / "web.log")
    try:
        web.wait_until(http_ok(base_url + "/healthz"), "gunicorn", READY_TIMEOUT_SECONDS, interval=0.05)
    except BaseException:
        web.stop(STOP_TIMEOUT_SECONDS)
        raise
    return web, base_url


@contextlib.contextmanager
def running_stack(cleanup: contextlib.ExitStack) -> Iterator[Stack]:
    """Bring up database, Redis, fake API and gunicorn; registered on `cleanup` for teardown."""
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="imagegen-throughput-")))
    database_url = cleanup.enter_context(throwaway_database(tmp))
    redis_url = cleanup.enter_context(private_redis(tmp / "redis"))
    say("encoding the fake's answers once (4 photo-like 1024×1024 PNGs)")
    served = ServedImages(encoded_images())
    fake_stability.render_image = served
    fake = fake_stability.FakeStability(api_key=API_KEY, latency=WARM_UP_LATENCY, rate_limit=API_LIMIT).start()
    cleanup.callback(fake.stop)
    env = stack_environment(database_url, redis_url, fake.base_url, tmp)
    app = in_process_app(env, tmp)
    cleanup.callback(dispose_engine, app)
    web, base_url = start_web(env, tmp)
    cleanup.callback(web.stop, STOP_TIMEOUT_SECONDS)
    web_tier = TierSampler(web.pid, memory=False)
    web_tier.start()
    cleanup.callback(web_tier.stop)
    yield Stack(app, env, base_url, web, web_tier, fake, served, tmp)


def dispose_engine(app: Flask) -> None:
    """Close this process's database connections, so dropping the database finds none."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def expected_worker_processes(app: Flask, concurrency: int) -> int:
    """How many RQ workers worker.py registers: WORKER_PROCESSES with thread slots, else one per slot (before)."""
    from app.worker import pool as worker_pool

    if hasattr(worker_pool, "slots_per_process"):
        return min(int(os.environ.get("WORKER_PROCESSES") or (os.cpu_count() or 1)), concurrency)
    return concurrency


@contextlib.contextmanager
def worker_tier(stack: Stack, concurrency: int) -> Iterator[tuple[ProcessGroup, TierSampler, float]]:
    """`python worker.py` with WORKER_CONCURRENCY=concurrency; yields it, its sampler and its start-up seconds."""
    log_path = stack.tmp / f"worker-{concurrency}.log"
    worker = spawn("worker.py", [sys.executable, "worker.py"], {**stack.env, "WORKER_CONCURRENCY": str(concurrency)},
                   log_path)
    sampler = TierSampler(worker.pid)
    sampler.start()
    count = expected_worker_processes(stack.app, concurrency)
    redis = stack.redis

    def ready() -> bool:
        workers = Worker.all(connection=redis)
        return len(workers) == count and all(w.get_state() == "idle" for w in workers)

    try:
        startup = worker.wait_until(ready, f"{count} idle RQ workers", READY_TIMEOUT_SECONDS, interval=0.05)
        yield worker, sampler, startup
    finally:
        sampler.stop()
        worker.stop(STOP_TIMEOUT_SECONDS)


# ----- a browser's part: submit, then pages that poll --------------------------------------------------


SEEN_RE = re.compile(r'hx-get="[^"]*/status\?seen=([^"&]*)"')
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
BATCH_RE = re.compile(r"/generate/(\d+)$")


def submit_batch(base_url: str, prompts: list[str]) -> int:
    """Fill in the home page's form with every prompt and press Generate; return the new batch's id."""
    with requests.Session() as session:
        page = session.get(base_url + "/", timeout=30)
        token = CSRF_RE.search(page.text)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"GET / answered {page.status_code} without a CSRF token")
        form = {"csrf_token": token.group(1), "model": "core", "aspect_ratio": "1:1", "output_format": "png",
                "style_preset": "", "negative_prompt": "", "seed": "", "cfg_scale": "", "generate": "1"}
        form.update({f"prompts-{i}": text for i, text in enumerate(prompts)})
        answer = session.post(base_url + "/", data=form, allow_redirects=False, timeout=60)
    found = BATCH_RE.search(answer.headers.get("Location", ""))
    if answer.status_code != 303 or found is None:
        raise RuntimeError(f"submitting the form answered {answer.status_code}: {answer.text[:300]}")
    return int(found.group(1))


@dataclass
class PollLog:
    """What the simulated pages saw: each poll's status and round-trip seconds."""

    polls: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, seconds: float) -> None:
        """Record one poll."""
        with self.lock:
            self.polls.append((status, seconds))


class GeneratePage(threading.Thread):
    """One open generate page: loads the page, then polls with its seen token every second until the batch is final."""

    def __init__(self, url: str, log: PollLog, loaded: threading.Barrier, offset: float, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.log, self.loaded, self.offset, self.halt = url, log, loaded, offset, stop
        self.error: str | None = None

    def run(self) -> None:
        """Load, wait for the other pages, then poll like htmx does (HX-Request, the token from the last answer)."""
        with requests.Session() as session:
            try:
                seen = SEEN_RE.search(session.get(self.url, timeout=30).text)
                self.loaded.wait()
                next_poll = time.monotonic() + self.offset
                while seen is not None and not self.halt.is_set():
                    self.halt.wait(max(0.0, next_poll - time.monotonic()))
                    next_poll += PAGE_POLL_SECONDS
                    seen = self._poll(session, unquote(seen.group(1)), seen)
            except (requests.RequestException, threading.BrokenBarrierError) as exc:
                self.error = repr(exc)

    def _poll(self, session: requests.Session, token: str, seen: re.Match[str]) -> re.Match[str] | None:
        started = time.perf_counter()
        answer = session.get(f"{self.url}/status", params={"seen": token}, headers={"HX-Request": "true"}, timeout=30)
        self.log.add(answer.status_code, time.perf_counter() - started)
        if answer.status_code == 204:
            return seen
        return SEEN_RE.search(answer.text)  # None once the batch is final: the fragment carries no trigger


# ----- the 204 poll, server side ------------------------------------------------------------------------


@dataclass
class PollCost:
    """The 204 poll through the Flask test client: mean µs, and the SQL statements one request runs."""

    mean_us: float
    requests: int
    statements: int
    plans: list[str]
    p50_us: float = math.nan
    p95_us: float = math.nan


class StatementLog:
    """Statements the database is sent from one thread (a SQLAlchemy event listener)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.thread = engine, threading.get_ident()
        self.statements: list[tuple[str, object]] = []

    def __enter__(self) -> StatementLog:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if threading.get_ident() == self.thread:
            self.statements.append((statement, parameters))


def current_seen(app: Flask, batch_id: int) -> str:
    """The seen token a page holding the batch's current state would send."""
    from app.batches.progress import seen_signature
    from app.batches.queries import generations_of

    with app.app_context():
        seen = seen_signature(generations_of(batch_id))
        db.session.remove()
    return seen


def time_unchanged_poll(app: Flask, batch_id: int, count: int, until: float | None = None) -> PollCost:
    """Mean µs per 204 poll through the test client (the whole Flask stack, no socket), with its SQL."""
    client = app.test_client()
    url = f"/generate/{batch_id}/status"
    seen = current_seen(app, batch_id)
    for _ in range(10):  # warm: templates, compiled SQL, the connection pool
        client.get(url, query_string={"seen": seen})
    with app.app_context():
        engine = db.engine
    timings, per_request = [], Counter()
    with StatementLog(engine) as log:
        for _ in range(count):
            if until is not None and time.monotonic() > until:
                break
            before, started = len(log.statements), time.perf_counter()
            status = client.get(url, query_string={"seen": seen}, headers={"HX-Request": "true"}).status_code
            elapsed = time.perf_counter() - started
            if status == 204:
                timings.append(elapsed)
                per_request[len(log.statements) - before] += 1
                sample = log.statements[before:]
            else:  # a card changed meanwhile: take the new token, and do not count this one
                seen = current_seen(app, batch_id)
    statements = per_request.most_common(1)[0][0] if per_request else 0
    plans = explain(app, sample) if timings else []
    micros = [seconds * 1e6 for seconds in timings]
    return PollCost(sum(micros) / max(1, len(micros)), len(micros), statements, plans,
                    percentile(micros, 0.5), percentile(micros, 0.95))


def explain(app: Flask, statements: list[tuple[str, object]]) -> list[str]:
    """Each distinct statement's plan, condensed to its scan nodes (PostgreSQL's EXPLAIN)."""
    plans, seen = [], set()
    with app.app_context():
        connection = db.session.connection()
        if connection.dialect.name != "postgresql":
            return []
        for statement, parameters in statements:
            if statement in seen:
                continue
            seen.add(statement)
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
            table = re.search(r"FROM (\w+)", statement)
            scans = [re.sub(r"\s+\(cost.*", "", row).strip(" ->") for row in rows if "Scan" in row]
            plans.append(f"{table.group(1) if table else '?'}: " + "; ".join(dict.fromkeys(scans)))
        db.session.remove()
    return plans


# ----- one scenario --------------------------------------------------------------------------------


@dataclass
class Result:
    """One scenario's numbers (seconds and milliseconds as named)."""

    scenario: str
    label: str
    prompts: int
    concurrency: int
    latency: float
    wall: float
    ideal: float
    bound: str
    worker_processes: int
    startup_s: float
    idle_pss_mb: float
    peak_pss_mb: float
    worker_idle_cpu_ms_per_s: float
    worker_cpu_ms_per_image: float
    web_submit_ms: float
    web_pages_ms: float
    web_poll_cpu_ms: float
    web_cpu_ms_per_image: float
    polls: int
    polls_204: int
    poll_204_p50_ms: float
    poll_204_p95_ms: float
    poll_200_p50_ms: float
    answers_429: int
    max_in_flight_at_api: int
    load_before: str
    cpu_ms_per_image: dict[str, float] = field(default_factory=dict)  # database, redis, benchmark, worker_system
    others_cores: float = math.nan  # CPUs' worth of other people's work on the machine during the batch
    timeline: dict[str, float] = field(default_factory=dict)
    pss_sample_s: float = SAMPLE_SECONDS  # the longest interval between two PSS samples
    test_client_204_us: float = math.nan
    test_client_204_in_flight_us: float = math.nan
    test_client_204_in_flight_p50_us: float = math.nan
    test_client_204_in_flight_p95_us: float = math.nan
    statements_per_204: int = 0
    statements_per_204_in_flight: int = 0
    plans: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Wall time over ideal time."""
        return self.wall / self.ideal


def app_rate_limit() -> RateLimit:
    """STABILITY_RATE_LIMIT as the stack runs with it (the default unless set for this command)."""
    return parse_rate_limit(os.environ.get("STABILITY_RATE_LIMIT", "140/10"))


def ideal_seconds(scenario: Scenario) -> tuple[float, str]:
    """The latency bound or the rate-limit bound of the app's limiter (a sliding window), whichever is higher."""
    latency_bound = scenario.latency * math.ceil(scenario.prompts / scenario.concurrency)
    limit = app_rate_limit()
    rate_bound = scenario.latency + limit.seconds * ((scenario.prompts - 1) // limit.requests)
    if rate_bound > latency_bound:
        return rate_bound, f"rate limit {limit.requests}/{limit.seconds:g}"
    return latency_bound, "latency"


def pending_count(app: Flask, batch_id: int) -> int:
    """How many generations of the batch are not final yet."""
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Generation).where(
            Generation.batch_id == batch_id, Generation.status.not_in(FINAL_STATUSES)))
        db.session.remove()
    return count or 0


def wait_until_final(stack: Stack, batch_id: int, worker: ProcessGroup, timeout: float) -> None:
    """Check the database every 20 ms until every row of the batch is final."""
    deadline = time.monotonic() + timeout
    while pending_count(stack.app, batch_id):
        if worker.returncode is not None:
            raise RuntimeError(f"worker.py exited with status {worker.returncode} mid-batch")
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch_id} not final after {timeout:.0f} s")
        time.sleep(FINAL_POLL_SECONDS)


def check_succeeded(app: Flask, batch_id: int, expected: int) -> None:
    """Every image of the batch must have succeeded, or the timing means nothing."""
    with app.app_context():
        statuses = Counter(db.session.scalars(sa.select(Generation.status).where(Generation.batch_id == batch_id)))
        db.session.remove()
    if statuses.get(Status.SUCCEEDED, 0) != expected:
        raise RuntimeError(f"batch {batch_id}: {dict(statuses)}, expected {expected} succeeded")


def clear_rate_windows(stack: Stack) -> None:
    """Forget the warm-up's requests in both the fake's window and the app's limiter, so each batch starts fresh."""
    stack.fake.reset()
    redis = stack.redis
    for key in redis.scan_iter(match="*ratelimit*"):
        redis.delete(key)


def prompts_for(scenario: Scenario, round_name: str, count: int) -> list[str]:
    """Distinct prompts, so every card is its own."""
    return [f"{scenario.name} {round_name} {i}: a lighthouse at dusk, photographic" for i in range(count)]


def run_batch(stack: Stack, scenario: Scenario, worker: ProcessGroup, prompts: list[str]) -> int:
    """Submit one batch through the form and wait for it; return its id."""
    batch_id = submit_batch(stack.base_url, prompts)
    wait_until_final(stack, batch_id, worker, timeout=scenario.latency * 10 + 120)
    check_succeeded(stack.app, batch_id, len(prompts))
    return batch_id


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank); NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def service_pids(stack: Stack) -> dict[str, list[int]]:
    """The PostgreSQL backends serving gunicorn and worker.py (not this script), and the redis-server."""
    pids: dict[str, list[int]] = {"database": [], "redis": []}
    with stack.app.app_context():
        if db.engine.dialect.name == "postgresql":
            pids["database"] = list(db.session.scalars(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name <> :me"),
                {"me": BENCH_APP_NAME}))
        db.session.remove()
    with contextlib.suppress(Exception):
        pids["redis"] = [int(stack.redis.info("server")["process_id"])]
    return pids


class MachineCpu:
    """CPU seconds spent between two readings by each part: both tiers, database, Redis, this script, the rest."""

    def __init__(self, stack: Stack, worker: TierSampler) -> None:
        self.stack, self.worker = stack, worker
        self.start = self._read()

    def _read(self) -> dict[str, object]:
        times = os.times()
        services = {name: {pid: cpu_ticks(pid)[0] for pid in pids} for name, pids in service_pids(self.stack).items()}
        return {"worker": self.worker.cpu_seconds(), "worker_system": self.worker.cpu_seconds(system_only=True),
                "web": self.stack.web_tier.cpu_seconds(), "benchmark": times.user + times.system,
                "machine": machine_busy_seconds(), **services}

    def used(self) -> dict[str, float]:
        """CPU seconds per part since the first reading; 'others' is what nothing of ours used."""
        end, start = self._read(), self.start
        used = {name: end[name] - start[name] for name in ("worker", "worker_system", "web", "benchmark", "machine")}
        for name in ("database", "redis"):  # a backend that appeared meanwhile counts from zero
            used[name] = sum(ticks - start[name].get(pid, 0) for pid, ticks in end[name].items()) / CLOCK_TICKS
        ours = sum(used[name] for name in ("worker", "web", "benchmark", "database", "redis"))
        used["others"] = max(0.0, used["machine"] - ours)
        return used


def api_timeline(fake: fake_stability.FakeStability, started: float) -> dict[str, float]:
    """When the API saw the batch: first and last request, last answer (seconds after the submission)."""
    calls = [r for r in fake.generate_requests if r.status == 200]
    if not calls:
        return {}
    return {"first_request": min(r.arrived_at for r in calls) - started,
            "last_request": max(r.arrived_at for r in calls) - started,
            "last_answer": max(r.answered_at for r in calls) - started}


@dataclass
class Timed:
    """Raw facts of the measured batch, before they become a Result."""

    batch_id: int = 0
    wall: float = 0.0
    web_submit: float = 0.0
    web_pages: float = 0.0
    web_polls: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of every part of the machine over the batch
    timeline: dict[str, float] = field(default_factory=dict)  # seconds after the submission
    log: PollLog = field(default_factory=PollLog)
    in_flight_cost: PollCost | None = None


def measured_batch(stack: Stack, scenario: Scenario, worker: ProcessGroup, tier: TierSampler) -> Timed:
    """The timed batch: submit, 20 pages polling, wait for every row; CPU of both tiers around it."""
    timed, prompts = Timed(), prompts_for(scenario, "timed", scenario.prompts)
    cpu = MachineCpu(stack, tier)
    web_before = stack.web_tier.cpu_seconds()
    started, started_monotonic = time.perf_counter(), time.monotonic()
    timed.batch_id = submit_batch(stack.base_url, prompts)
    web_submitted = stack.web_tier.cpu_seconds()
    halt, loaded = threading.Event(), threading.Barrier(PAGES + 1)
    url = f"{stack.base_url}/generate/{timed.batch_id}"
    pages = [GeneratePage(url, timed.log, loaded, i * PAGE_POLL_SECONDS / PAGES, halt) for i in range(PAGES)]
    for page in pages:
        page.start()
    loaded.wait(timeout=60)
    web_loaded = stack.web_tier.cpu_seconds()
    probe = in_flight_probe(stack, scenario, timed)
    wait_until_final(stack, timed.batch_id, worker, timeout=scenario.latency * 10 + 120)
    timed.wall = time.perf_counter() - started
    time.sleep(0.5)  # RQ finishes its bookkeeping just after the row turns final
    timed.cpu = cpu.used()
    timed.timeline = api_timeline(stack.fake, started_monotonic)
    for page in pages:
        page.join(timeout=PAGE_POLL_SECONDS * 3)
    halt.set()
    if probe is not None:
        probe.join()
    errors = [page.error for page in pages if page.error]
    if errors:
        raise RuntimeError(f"a generate page failed: {errors[0]}")
    web_after = stack.web_tier.cpu_seconds()
    timed.web_submit, timed.web_pages = web_submitted - web_before, web_loaded - web_submitted
    timed.web_polls = web_after - web_loaded
    check_succeeded(stack.app, timed.batch_id, scenario.prompts)
    return timed


def in_flight_probe(stack: Stack, scenario: Scenario, timed: Timed) -> threading.Thread | None:
    """With several seconds of latency, time the 204 poll through the test client while every image is in flight."""
    if scenario.latency < 4:
        return None
    until = time.monotonic() + scenario.latency * 0.6

    def probe() -> None:
        time.sleep(scenario.latency * 0.2)  # every row claimed and waiting on the API by now
        timed.in_flight_cost = time_unchanged_poll(stack.app, timed.batch_id, 300, until=until)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    return thread


def wait_for_quiet_machine(max_load: float, tries: int) -> str:
    """Wait (up to `tries` minutes) while the 1-minute load average is above max_load; return the load."""
    for attempt in range(tries):
        load = os.getloadavg()[0]
        if load <= max_load:
            break
        say(f"load average {load:.2f} > {max_load:g}: waiting a minute ({attempt + 1}/{tries})")
        time.sleep(60)
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run_scenario(stack: Stack, scenario: Scenario, args: argparse.Namespace) -> Result:
    """Fresh worker.py, an untimed warm-up batch, then the timed batch; numbers for one row."""
    stack.served.kind = scenario.image
    ideal, bound = ideal_seconds(scenario)
    # Checked once before the stack starts: our own last scenario raises the load average for a minute after it.
    # The load is reported, and each batch measures the CPU other work took from the machine meanwhile.
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    say(f"{scenario.name}: starting worker.py with WORKER_CONCURRENCY={scenario.concurrency} (load {load})")
    with worker_tier(stack, scenario.concurrency) as (worker, tier, startup):
        time.sleep(1.0)
        idle_pss = tier.sample()
        idle_before, idle_started = tier.cpu_seconds(), time.perf_counter()
        time.sleep(2.0)
        idle_rate = (tier.cpu_seconds() - idle_before) / (time.perf_counter() - idle_started)
        if args.warmup:
            # Each process's first jobs pay one-off costs (connections to the database and the API, lazy imports,
            # SQL compilation); long-running workers have paid them, so one batch at short latency goes first.
            stack.fake.latency = WARM_UP_LATENCY
            size = min(scenario.concurrency, app_rate_limit().requests)  # never waiting on the limiter
            run_batch(stack, scenario, worker, prompts_for(scenario, "warm-up", size))
        clear_rate_windows(stack)
        stack.fake.latency = scenario.latency
        tier.reset_peak()
        say(f"{scenario.name}: timed batch of {scenario.prompts} (ideal {ideal:.1f} s, {bound})")
        timed = measured_batch(stack, scenario, worker, tier)
        peak, interval = tier.peak_kib, tier.slowest_interval
        answers_429, max_api = stack.fake.count_429, stack.fake.max_concurrency
        say(f"{scenario.name}: {timed.wall:.2f} s; timing the 204 poll through the test client")
        quiet_cost = time_unchanged_poll(stack.app, timed.batch_id, args.poll_requests)
        if args.profile and scenario.image == "full" and scenario.concurrency == 64:
            stack.profile = profile_worker_tier(stack, scenario, worker)
    result = build_result(scenario, timed, quiet_cost, ideal, bound, load, startup,
                          expected_worker_processes(stack.app, scenario.concurrency), idle_pss, peak, idle_rate,
                          answers_429, max_api)
    result.pss_sample_s = interval
    return result


def build_result(scenario: Scenario, timed: Timed, quiet: PollCost, ideal: float, bound: str, load: str,
                 startup: float, processes: int, idle_pss: int, peak: int, idle_rate: float, answers_429: int,
                 max_api: int) -> Result:
    """Turn the raw facts into one row."""
    n = scenario.prompts
    ok = [seconds * 1000 for status, seconds in timed.log.polls if status == 204]
    changed = [seconds * 1000 for status, seconds in timed.log.polls if status == 200]
    web_total = timed.web_submit + timed.web_pages + timed.web_polls
    in_flight = timed.in_flight_cost
    return Result(
        scenario=scenario.name, label=scenario.label, prompts=n, concurrency=scenario.concurrency,
        latency=scenario.latency, wall=timed.wall, ideal=ideal, bound=bound, worker_processes=processes,
        startup_s=startup, idle_pss_mb=idle_pss / 1024, peak_pss_mb=peak / 1024,
        worker_idle_cpu_ms_per_s=idle_rate * 1000, worker_cpu_ms_per_image=timed.cpu["worker"] / n * 1000,
        web_submit_ms=timed.web_submit * 1000, web_pages_ms=timed.web_pages * 1000,
        web_poll_cpu_ms=timed.web_polls * 1000 / max(1, len(timed.log.polls)),
        web_cpu_ms_per_image=web_total / n * 1000, polls=len(timed.log.polls), polls_204=len(ok),
        poll_204_p50_ms=percentile(ok, 0.5), poll_204_p95_ms=percentile(ok, 0.95),
        poll_200_p50_ms=percentile(changed, 0.5), answers_429=answers_429, max_in_flight_at_api=max_api,
        load_before=load, test_client_204_us=quiet.mean_us,
        cpu_ms_per_image={name: timed.cpu[name] / n * 1000 for name in ("database", "redis", "benchmark",
                                                                       "worker_system")},
        others_cores=timed.cpu["others"] / timed.wall, timeline=timed.timeline,
        test_client_204_in_flight_us=in_flight.mean_us if in_flight else math.nan,
        test_client_204_in_flight_p50_us=in_flight.p50_us if in_flight else math.nan,
        test_client_204_in_flight_p95_us=in_flight.p95_us if in_flight else math.nan,
        statements_per_204=quiet.statements, plans=quiet.plans,
        statements_per_204_in_flight=in_flight.statements if in_flight else 0,
    )


# ----- where the CPU goes ----------------------------------------------------------------------------

# Checked in order against each sampled stack; the first match names the sample. The steps of one image come
# first, then what they call into, then our job's own code, then RQ (whose Redis calls are its bookkeeping).
CATEGORIES = [
    ("decode (chunk CRCs, Wuffs PNG decode)", ("decode_image", "inspect_image")),
    ("thumbnail (reduce, area resize, JPEG encode)", ("make_thumbnail",)),
    ("metadata (parameters chunk)", ("embed_parameters", "parameters_text")),
    ("file write (temp file, fsync, rename)", ("media_store/",)),
    ("rate limiter (Redis script)", ("rate_limit.py",)),
    ("HTTP to the API (requests, urllib3)", ("stability.py", "requests/", "urllib3/", "http/client.py")),
    ("database (SQLAlchemy, psycopg)", ("sqlalchemy/", "psycopg")),
    ("metrics (prometheus-client)", ("prometheus_client",)),
    ("logging", ("logging/",)),
    ("job code (other)", ("jobs.py",)),
    ("RQ bookkeeping (dequeue, job state, heartbeats)", ("rq/",)),
    ("Redis (other)", ("redis/",)),
]


def categorize(stack: str) -> str:
    """Which part of the work a sampled stack was doing."""
    for name, markers in CATEGORIES:
        if any(marker in stack for marker in markers):
            return name
    return "other (Flask app context, threads, interpreter)"


def profile_worker_tier(stack: Stack, scenario: Scenario, worker: ProcessGroup) -> dict[str, float]:
    """An untimed batch with py-spy sampling every worker process; returns CPU ms per image by category."""
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        say("py-spy not installed (.venv/bin/pip install py-spy): no sampled profile")
        return {}
    clear_rate_windows(stack)
    out = stack.tmp / "worker-profile.txt"
    rate = 250
    say(f"{scenario.name}: profiling an untimed batch of {scenario.prompts} with py-spy ({rate} Hz)")
    spy_process = subprocess.Popen([spy, "record", "--pid", str(worker.pid), "--subprocesses", "--nonblocking",
                                    "--rate", str(rate), "--format", "raw", "--output", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        run_batch(stack, scenario, worker, prompts_for(scenario, "profiled", scenario.prompts))
        time.sleep(0.5)
    finally:
        spy_process.send_signal(signal.SIGINT)
        spy_process.wait(timeout=30)
    totals: Counter[str] = Counter()
    for line in out.read_text().splitlines() if out.exists() else []:
        frames, _, count = line.rpartition(" ")
        if count.isdigit() and "(idle)" not in frames:
            totals[categorize(frames)] += int(count)
    return {name: samples / rate * 1000 / scenario.prompts for name, samples in totals.most_common()}


def profile_store(stack: Stack, count: int = 20) -> dict[str, object]:
    """Profile app.worker.jobs._store with cProfile (CPU clock) here, on claimed rows and the full-size PNG."""
    from app.accounts.users import local_user
    from app.generations import lifecycle
    from app.providers.base import GeneratedImage
    from app.worker import jobs

    png = stack.served.images["full"][0]
    image = GeneratedImage(content=png, mime_type="image/png", seed=1234, finish_reason="SUCCESS", request_id="bench")
    with stack.app.test_request_context():
        # No worker runs now: these jobs stay in Redis, and the rows are claimed right here instead.
        batch = lifecycle.create_batch(local_user(), [f"profiled in process {i}" for i in range(count * 2 + 2)])
        claimed = [lifecycle.claim(g.id, g.job_id) for g in batch.generations]
        jobs_of = {g.id: g.job_id for g in batch.generations}
        for generation in claimed[:2]:  # warm
            jobs._store(stack.app, generation, image, jobs_of[generation.id])
        started = time.thread_time()
        for generation in claimed[2:count + 2]:
            jobs._store(stack.app, generation, image, jobs_of[generation.id])
        plain_ms = (time.thread_time() - started) / count * 1000
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        for generation in claimed[count + 2:]:
            jobs._store(stack.app, generation, image, jobs_of[generation.id])
        profiler.disable()
        db.session.remove()
    return {"store_ms": plain_ms, "parts": store_parts(pstats.Stats(profiler), count)}


STORE_PARTS = [
    ("decode", "images.py", "decode_image"), ("thumbnail", "thumbnails.py", "make_thumbnail"),
    ("metadata", "metadata.py", "embed_parameters"), ("metadata text", "metadata.py", "parameters_text"),
    ("file write", "local.py", "put"), ("database (finish)", "lifecycle.py", "finish"),
    ("whole _store", "jobs.py", "_store"),
]


def store_parts(stats: pstats.Stats, count: int) -> dict[str, float]:
    """Cumulative CPU ms per call of each step of _store, from the profile."""
    parts = {}
    for label, file_name, function in STORE_PARTS:
        for (path, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
            if name == function and path.endswith(file_name):
                parts[label] = row[3] / count * 1000  # cumulative time
    return parts


# ----- report ---------------------------------------------------------------------------------------


def fmt(value: float, digits: int = 1) -> str:
    """A number, or a dash for NaN."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def main_table(results: list[Result]) -> list[str]:
    """The issue's table."""
    lines = [
        "| scenario | wall (s) | ideal (s) | ratio | worker peak PSS (MB) | worker CPU / image (ms) "
        "| web CPU / image (ms) | 204 poll via gunicorn p50 / p95 (ms) | 429s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.label} | {r.wall:.2f} | {r.ideal:.1f} ({r.bound}) | {r.ratio:.2f} | {r.peak_pss_mb:.0f} "
                     f"| {fmt(r.worker_cpu_ms_per_image)} | {fmt(r.web_cpu_ms_per_image)} "
                     f"| {fmt(r.poll_204_p50_ms)} / {fmt(r.poll_204_p95_ms)} | {r.answers_429} |")
    return lines


def detail_table(results: list[Result]) -> list[str]:
    """The figures behind the table."""
    lines = [
        "| scenario | worker processes | start-up (s) | idle PSS (MB) | PSS sampled every (s) | idle CPU (ms/s) "
        "| most at the API at once "
        "| web: submit / 20 page loads (ms CPU) | polls (204s) | web CPU / poll (ms) "
        "| 204 via test client, quiet / in flight (µs) | in flight p50 / p95 (µs) | SQL statements per 204 "
        "| load before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(f"| {r.scenario} | {r.worker_processes} | {r.startup_s:.1f} | {r.idle_pss_mb:.0f} "
                     f"| ≤ {r.pss_sample_s:.1f} "
                     f"| {r.worker_idle_cpu_ms_per_s:.1f} | {r.max_in_flight_at_api} "
                     f"| {r.web_submit_ms:.0f} / {r.web_pages_ms:.0f} | {r.polls} ({r.polls_204}) "
                     f"| {r.web_poll_cpu_ms:.2f} | {fmt(r.test_client_204_us, 0)} / "
                     f"{fmt(r.test_client_204_in_flight_us, 0)} "
                     f"| {fmt(r.test_client_204_in_flight_p50_us, 0)} / {fmt(r.test_client_204_in_flight_p95_us, 0)} "
                     f"| {r.statements_per_204} | {r.load_before} |")
    return lines


def time_and_cpu_table(results: list[Result]) -> list[str]:
    """When the API saw each batch, and every part's CPU per image (the benchmark's share is the fake and pages)."""
    lines = [
        "| scenario | first / last API request (s) | last API answer (s) | last row final (s) "
        "| CPU ms / image: worker (kernel part) · web · PostgreSQL · Redis · benchmark | others' CPU (cores) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in results:
        t, c = r.timeline, r.cpu_ms_per_image
        lines.append(f"| {r.scenario} | {fmt(t.get('first_request', math.nan), 2)} / "
                     f"{fmt(t.get('last_request', math.nan), 2)} | {fmt(t.get('last_answer', math.nan), 2)} "
                     f"| {r.wall:.2f} | {r.worker_cpu_ms_per_image:.1f} ({c['worker_system']:.1f}) · "
                     f"{r.web_cpu_ms_per_image:.1f} · {c['database']:.1f} · {c['redis']:.1f} · {c['benchmark']:.1f} "
                     f"| {r.others_cores:.2f} |")
    return lines


def profile_lines(sampled: dict[str, float], store: dict[str, object]) -> list[str]:
    """Where the worker's CPU goes for a full-size PNG."""
    lines = []
    if sampled:
        total = sum(sampled.values())
        lines += ["", f"py-spy, worker tier, 64 full-size PNGs: {total:.1f} ms of sampled CPU per image", "",
                  "| part | ms / image | share |", "|---|---:|---:|"]
        lines += [f"| {name} | {ms:.1f} | {ms / total:.0%} |" for name, ms in sampled.items()]
    if store:
        parts = store["parts"]
        lines += ["", f"cProfile (CPU clock) around `_store` in-process, full-size PNG: {store['store_ms']:.1f} ms "
                  "per call unprofiled", "", "| step | ms / call (profiled) |", "|---|---:|"]
        lines += [f"| {name} | {ms:.1f} |" for name, ms in parts.items()]  # type: ignore[union-attr]
    return lines


def machine_line() -> str:
    """CPU, Python, OS, and the backends."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), model)
    return (f"Machine: {cpus} CPUs ({model}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}.")


def print_report(results: list[Result], profile: tuple[dict[str, float], dict[str, object]], facts: str,
                 argv: list[str]) -> None:
    """The paste-ready report."""
    print("```\n.venv/bin/python benchmarks/throughput.py " + " ".join(argv) + "\n```\n")
    print(machine_line() + " " + facts + "\n")
    print("\n".join(main_table(results)))
    print()
    print("\n".join(detail_table(results)))
    print()
    print("\n".join(time_and_cpu_table(results)))
    for r in results:
        if r.plans:
            print(f"\n{r.scenario}: the 204 poll's statements: " + " | ".join(r.plans))
    print("\n".join(profile_lines(*profile)))


def backend_facts(stack: Stack) -> str:
    """Which database and Redis ran, with versions."""
    with stack.app.app_context():
        database = "PostgreSQL " + str(db.session.scalar(sa.text("SHOW server_version"))) \
            if db.engine.dialect.name == "postgresql" else "SQLite"
        db.session.remove()
    version = stack.redis.info("server")["redis_version"]
    return (f"{database}; Redis {version}; gunicorn 2 processes × 4 threads; fake API in the benchmark process, "
            f"enforcing {API_LIMIT[0]}/{API_LIMIT[1]:g} s; STABILITY_RATE_LIMIT "
            f"{os.environ.get('STABILITY_RATE_LIMIT', '140/10')} (default).")


# ----- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="no untimed warm-up batch")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip py-spy and cProfile")
    parser.add_argument("--poll-requests", type=int, default=1000, help="test-client polls to time (default 1000)")
    parser.add_argument("--max-load", type=float, default=1.5, help="wait while the load average is above this")
    parser.add_argument("--load-tries", type=int, default=3, help="minutes to wait for the load to drop (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep-logs", type=Path,
                        help="copy gunicorn's and worker.py's logs (and py-spy's raw samples) into this folder")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios.split(",") if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    args.chosen = [SCENARIOS[name] for name in args.scenarios.split(",")]
    return args


def benchmark(args: argparse.Namespace) -> tuple[list[Result], tuple[dict, dict], str]:
    """Bring up the stack, run every scenario, profile; tear everything down."""
    wait_for_quiet_machine(args.max_load, args.load_tries)
    with contextlib.ExitStack() as cleanup:
        stack = cleanup.enter_context(running_stack(cleanup))
        facts = backend_facts(stack)
        try:
            results = [run_scenario(stack, scenario, args) for scenario in args.chosen]
        except RuntimeError:
            for log in sorted(stack.tmp.glob("*.log")):
                say(f"--- the end of {log.name}:\n{tail(log, 15)}")
            raise
        finally:
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in [*stack.tmp.glob("*.log"), *stack.tmp.glob("*-profile.txt")]:
                    shutil.copy(log, args.keep_logs / log.name)
        sampled = stack.profile
        store = {}
        if args.profile:
            stack.served.kind = "full"
            say("cProfile around _store in-process")
            store = profile_store(stack)
    return results, (sampled, store), facts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; everything started is stopped on any exit."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the clean-up below still runs
    started = time.perf_counter()
    try:
        results, profile, facts = benchmark(args)
    except RuntimeError as error:
        say(f"error: {error}")
        return 1
    print_report(results, profile, facts, argv)
    if args.json:
        args.json.write_text(json.dumps({"results": [asdict(r) | {"ratio": r.ratio} for r in results],
                                         "profile": profile[0], "store": profile[1]}, indent=2))
    say(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
