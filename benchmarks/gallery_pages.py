"""Time the gallery's keyset pages deep into a large table, and its search and filters, through the real routes.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/gallery_pages.py [--images 100000] [--pages 1,10,100,1000] [--repeat 20]

It creates a throwaway database (a new PostgreSQL database on DATABASE_URL's server when that is set, else a
SQLite file in a temporary folder) and a private Redis (a free db number on REDIS_URL, else an embedded
redis-server), runs the migrations, bulk-loads N generations in batches of ten, then times GET /all/ with
the Flask test client: page 1, page k of the cursor chain, a prompt search and a status/model filter.
On PostgreSQL it also prints EXPLAIN (ANALYZE, BUFFERS) of the gallery's own SQL, and with --try-trigram
times the search again after adding a pg_trgm GIN index to the throwaway database (the app's schema is not
changed). Progress goes to stderr, the Markdown report to stdout; the database, Redis data and temporary
files are gone at the end.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, so neither the app package nor the tests' fixtures are on the path yet.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402
from conftest import private_redis, throwaway_database  # noqa: E402  (needs the path above)
from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

import app.gallery.routes as gallery_routes  # noqa: E402
from app import create_app  # noqa: E402
from app.accounts.users import local_user  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Batch, Generation, Rating, Star  # noqa: E402
from app.providers.options import ASPECT_RATIOS, MAX_SEED, MODELS, STYLE_PRESETS  # noqa: E402

PAGE_SIZE = 24
BATCH_SIZE = 10
CHUNK_BATCHES = 500  # 5,000 rows per executemany: big enough to amortise round trips, small enough for memory
VOCABULARY_SIZE = 2000
NEEDLE = "lighthouse"
NEEDLE_RATE = 0.001
SEARCH_URL = f"/all/?q={NEEDLE}"
FILTER_URL = "/all/?status=filtered&model=ultra"
# Shares of statuses; failed and canceled rows have no file, so the gallery skips them.
STATUS_WEIGHTS = {"succeeded": 92, "filtered": 4, "failed": 3, "canceled": 1}
MODEL_WEIGHTS = {"core": 40, "ultra": 15, "sd3.5-large": 15, "sd3.5-large-turbo": 10, "sd3.5-medium": 10,
                 "sd3.5-flash": 10}
WARMUP_REQUESTS = 2
LOAD_MORE = re.compile(r'<li class="load-more">\s*<a href="([^"]+)"')
TILE = re.compile(r'<li class="tile[ "]')
# A handful of real prompt words; the rest of the vocabulary is made-up words of the same shape.
COMMON_WORDS = (
    "a the of in with and by on at portrait landscape city forest mountain river ocean castle dragon robot cat "
    "dog woman man child old young golden silver misty sunset sunrise night stars neon rain snow desert garden "
    "flowers cinematic lighting detailed highly photorealistic oil painting watercolor sketch digital art render "
    "octane unreal engine bokeh 35mm film grain vibrant colors pastel dark moody epic fantasy sci-fi cyberpunk "
    "steampunk medieval futuristic ancient ruins temple village harbor ship boat bridge tower window street market "
    "cafe library wizard knight astronaut planet moon galaxy nebula clouds storm lightning fire ice crystal glass "
    "wooden stone marble velvet silk style trending artstation masterpiece sharp focus wide angle close-up macro "
    "aerial view soft light hard shadows volumetric fog reflections water lake waterfall cliff valley meadow "
    "autumn winter spring summer leaves tree owl fox wolf horse whale butterfly"
).split()


def say(message: str) -> None:
    """Progress on stderr, so stdout carries only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """About 2,000 words with Zipf-like cumulative weights, so a few words are common and most are rare."""
    words = list(dict.fromkeys(COMMON_WORDS))
    seen = set(words)
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    while len(words) < VOCABULARY_SIZE:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    # The needle must match only where it is planted, or the search's selectivity would be wrong.
    assert not any(NEEDLE in word for word in words)
    cumulative, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    return words, cumulative


@dataclass
class LoadStats:
    """What was loaded, to report alongside the timings."""

    generations: int = 0
    images: int = 0
    needles: int = 0
    filtered_ultra: int = 0
    seconds: float = 0.0


class RowMaker:
    """Realistic generation rows: random prompts, statuses, models and sizes, deterministic for a seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words, self.cumulative = vocabulary(self.rng)
        self.models = [name for name in MODEL_WEIGHTS if name in MODELS] or list(MODELS)
        self.model_weights = [MODEL_WEIGHTS.get(name, 1) for name in self.models]
        self.stats = LoadStats()

    def prompt(self) -> str:
        """5 to 30 words; about one prompt in a thousand mentions a lighthouse, in either case."""
        words = self.rng.choices(self.words, cum_weights=self.cumulative, k=self.rng.randint(5, 30))
        if self.rng.random() < NEEDLE_RATE:
            words[self.rng.randrange(len(words))] = self.rng.choice((NEEDLE, NEEDLE.capitalize()))
            self.stats.needles += 1
        return " ".join(words)

    def row(self, batch_id: int, position: int, created: datetime) -> dict[str, Any]:
        """One generation; every row has the same keys, as executemany needs."""
        rng = self.rng
        status = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
        model = rng.choices(self.models, self.model_weights)[0]
        has_file = status in ("succeeded", "filtered")
        ratio = rng.choice(ASPECT_RATIOS)
        across, down = (int(part) for part in ratio.split(":"))
        width, height = round(1024 * math.sqrt(across / down)), round(1024 * math.sqrt(down / across))
        scale = 256 / max(width, height)
        stem = f"{rng.getrandbits(64):016x}"
        self.stats.generations += 1
        self.stats.images += has_file
        self.stats.filtered_ultra += status == "filtered" and model == "ultra"
        return {
            "batch_id": batch_id, "position": position, "prompt": self.prompt(), "model": model,
            "aspect_ratio": ratio, "output_format": "png",
            "negative_prompt": "blurry, low quality" if rng.random() < 0.2 else None,
            "style_preset": rng.choice(STYLE_PRESETS) if rng.random() < 0.3 else None,
            "requested_seed": None, "cfg_scale": None, "attempts": 1, "max_attempts": 3, "provider": "stability",
            "status": status, "error": None if has_file else "The API refused the request",
            "api_error_id": None, "api_request_id": f"req-{stem}", "job_id": f"job-{stem}",
            "seed": rng.randrange(MAX_SEED) if has_file else None,
            "finish_reason": {"succeeded": "SUCCESS", "filtered": "CONTENT_FILTERED"}.get(status),
            "file_name": f"{stem[:2]}/{stem}.png" if has_file else None,
            "mime_type": "image/png" if has_file else None,
            "thumb_name": f"{stem[:2]}/{stem}.thumb.jpg" if has_file else None,
            "thumb_width": round(width * scale) if has_file else None,
            "thumb_height": round(height * scale) if has_file else None,
            "history": [], "byte_size": rng.randint(400_000, 2_500_000) if has_file else None,
            "width": width if has_file else None, "height": height if has_file else None,
            "created_at": created, "started_at": created + timedelta(seconds=1),
            "finished_at": created + timedelta(seconds=rng.uniform(3, 12)),
        }


def insert_rows(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """COPY on PostgreSQL (several times faster than executemany), else a Core executemany."""
    if db.engine.dialect.name != "postgresql":
        # Core, not the ORM's bulk insert: that splits rows by which columns are None, into many small statements.
        db.session.execute(sa.insert(table), rows)
        return
    columns = list(rows[0])
    # JSON values go as their text; psycopg adapts the rest (datetimes, None as NULL) itself.
    as_json = [isinstance(table.c[name].type, sa.JSON) for name in columns]
    # COPY goes through the session's own connection, so it commits or rolls back with the session.
    driver = db.session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(value) if encode else value
                            for value, encode in zip(row.values(), as_json, strict=True)])


def load_generations(app: Flask, count: int, seed: int) -> LoadStats:
    """Insert count generations in batches of ten; a batch's rows share one created_at, as create_batch does."""
    maker = RowMaker(seed)
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    batches = math.ceil(count / BATCH_SIZE)
    with app.app_context():
        for first in range(1, batches + 1, CHUNK_BATCHES):
            batch_rows, generation_rows = [], []
            for batch_id in range(first, min(first + CHUNK_BATCHES, batches + 1)):
                # Microsecond gaps of up to ten minutes: increasing times, and exact ties only within a batch.
                moment += timedelta(seconds=maker.rng.uniform(1, 600))
                batch_rows.append({"id": batch_id, "created_at": moment})
                size = min(BATCH_SIZE, count - (batch_id - 1) * BATCH_SIZE)
                generation_rows += [maker.row(batch_id, position, moment) for position in range(size)]
            insert_rows(Batch.__table__, batch_rows)
            insert_rows(Generation.__table__, generation_rows)
            db.session.commit()
            say(f"loaded {maker.stats.generations:,} / {count:,} generations")
        if db.engine.dialect.name == "postgresql":
            # Explicit batch ids leave the sequence at 1; move it on so the database stays usable.
            db.session.execute(sa.text("SELECT setval(pg_get_serial_sequence('batches', 'id'), max(id)) FROM batches"))
            db.session.commit()
    maker.stats.seconds = time.perf_counter() - started
    return maker.stats


RATED_EVERY, STARRED_EVERY = 5, 20  # one image in 5 rated by the viewer (1-5 at random), one in 20 starred


def load_marks(app: Flask, seed: int) -> tuple[int, int]:
    """The viewer's (the local user's) ratings and stars on a share of the images: what the rating sort and the
    Starred filter read. Returns how many of each."""
    rng = random.Random(seed)
    with app.app_context():
        viewer = local_user().id
        rows = db.session.execute(sa.select(Generation.id, Generation.created_at)
                                  .where(Generation.file_name.is_not(None))).all()
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        ratings = [{"user_id": viewer, "generation_id": i, "value": rng.randint(1, 5), "image_created_at": made,
                    "updated_at": moment} for i, made in rows[::RATED_EVERY]]
        stars = [{"user_id": viewer, "generation_id": i, "created_at": moment} for i, _ in rows[::STARRED_EVERY]]
        if ratings:
            insert_rows(Rating.__table__, ratings)
        if stars:
            insert_rows(Star.__table__, stars)
        db.session.commit()
    return len(ratings), len(stars)


def settle_postgres(app: Flask) -> None:
    """VACUUM ANALYZE: fresh statistics and set hint bits, so autovacuum does not start in the middle of timing."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE) batches")
            connection.exec_driver_sql("VACUUM (ANALYZE) generations")
            connection.exec_driver_sql("VACUUM (ANALYZE) ratings")
            connection.exec_driver_sql("VACUUM (ANALYZE) stars")


class SqlSpy:
    """Counts the statements run between resets and keeps them, to report N+1 queries and EXPLAIN the SQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def reset(self) -> None:
        """Forget what was seen so far."""
        self.statements.clear()

    def gallery_statement(self) -> tuple[str, Any]:
        """The gallery's page query among the statements seen."""
        for statement, parameters in self.statements:
            if "FROM generations" in statement and "ORDER BY" in statement:
                return statement, parameters
        raise RuntimeError("the gallery query was not seen; did the route change?")


class PageClock:
    """Times gallery_page() inside the route: query, row fetch and ORM objects, without the template."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original: Callable[..., Any] = gallery_routes.gallery_page

    @contextmanager
    def installed(self) -> Iterator[PageClock]:
        """Wrap the route's gallery_page while timing, and put the real one back afterwards."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        gallery_routes.gallery_page = timed
        try:
            yield self
        finally:
            gallery_routes.gallery_page = self.original


@dataclass(frozen=True)
class Case:
    """One URL to time, and what to call it in the report."""

    label: str
    url: str


@dataclass
class Timing:
    """Repeated timings of one case."""

    case: Case
    wall_ms: list[float] = field(default_factory=list)
    page_ms: list[float] = field(default_factory=list)
    statements: int = 0
    items: int = 0

    @property
    def median(self) -> float:
        """Median wall time of the whole request."""
        return statistics.median(self.wall_ms)

    @property
    def p95(self) -> float:
        """Nearest-rank 95th percentile: a value that was actually observed."""
        ordered = sorted(self.wall_ms)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


def next_url(page_html: str) -> str | None:
    """The Load-more link of a page, unescaped as a browser would, or None on the last page."""
    match = LOAD_MORE.search(page_html)
    return html.unescape(match.group(1)) if match else None


def walk(client: FlaskClient, url: str, pages: int) -> list[str]:
    """Follow Load more from url, returning the URLs of pages 1..pages (fewer if the results end first)."""
    urls: list[str] = []
    current: str | None = url
    while current is not None and len(urls) < pages:
        urls.append(current)
        response = client.get(current)
        if response.status_code != 200:
            raise RuntimeError(f"GET {current} answered {response.status_code}")
        current = next_url(response.get_data(as_text=True))
    return urls


def time_cases(client: FlaskClient, cases: list[Case], repeat: int, spy: SqlSpy, clock: PageClock) -> list[Timing]:
    """Warm up, then time repeated GETs of every URL, round-robin so a busy spell on the machine hits all cases."""
    timings = [Timing(case) for case in cases]
    for case in cases:
        for _ in range(WARMUP_REQUESTS):
            client.get(case.url)
    for _ in range(repeat):
        for timing in timings:
            spy.reset()
            clock.seconds = 0.0
            started = time.perf_counter()
            response = client.get(timing.case.url)
            timing.wall_ms.append((time.perf_counter() - started) * 1000)
            timing.page_ms.append(clock.seconds * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {timing.case.url} answered {response.status_code}")
            timing.statements = len(spy.statements)
            timing.items = len(TILE.findall(response.get_data(as_text=True)))
    return timings


def chain_cases(client: FlaskClient, url: str, label: str, pages: list[int]) -> list[Case]:
    """Cases for the given page numbers of one cursor chain, walked once."""
    started = time.perf_counter()
    urls = walk(client, url, max(pages))
    say(f"walked {len(urls):,} pages of {url} in {time.perf_counter() - started:.1f} s")
    missing = [page for page in pages if page > len(urls)]
    if missing:
        say(f"{url} has only {len(urls)} pages; skipping page(s) {missing}")
    return [Case(f"{label}page {page}", urls[page - 1]) for page in pages if page <= len(urls)]


def explain(app: Flask, client: FlaskClient, spy: SqlSpy, url: str) -> str:
    """The plan of the gallery SQL behind url: EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL, QUERY PLAN on SQLite."""
    spy.reset()
    client.get(url)
    statement, parameters = spy.gallery_statement()
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        # The captured DBAPI statement and parameters, so the plan is that of exactly what the route ran.
        rows = db.session.connection().exec_driver_sql(prefix + statement, parameters).all()
        db.session.rollback()
    plan = "\n".join(row[0] for row in rows) if postgres else "\n".join(f"{row[0]:>3} {row[-1]}" for row in rows)
    # The 33 selected columns say nothing about the plan; the WHERE, ORDER BY and LIMIT do.
    short = re.sub(r"^SELECT .*?\s+FROM", lambda match: f"SELECT <{match.group(0).count(',') + 1} columns>\nFROM",
                   statement, count=1, flags=re.DOTALL)
    return f"{short}\n-- parameters: {parameters}\n\n{plan}"


def add_trigram_index(app: Flask) -> bool:
    """What-if only, in the throwaway database: a pg_trgm GIN index on prompt, as ILIKE '%word%' could use."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            return False
        started = time.perf_counter()
        db.session.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.session.execute(sa.text(
            "CREATE INDEX bench_generations_prompt_trgm ON generations USING gin (prompt gin_trgm_ops)"))
        db.session.execute(sa.text("ANALYZE generations"))
        db.session.commit()
        say(f"built the trigram index in {time.perf_counter() - started:.1f} s")
    return True


def table_rows(timings: list[Timing], baseline: float) -> list[str]:
    """Markdown rows: case, median, p95, ratio to page 1 and the breakdown columns."""
    rows = ["| case | median ms | p95 ms | ratio to page 1 | gallery_page() median ms | SQL statements | tiles |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for timing in timings:
        rows.append(f"| {timing.case.label} | {timing.median:.2f} | {timing.p95:.2f} | "
                    f"{timing.median / baseline:.2f} | {statistics.median(timing.page_ms):.2f} | "
                    f"{timing.statements} | {timing.items} |")
    return rows


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def database_facts(app: Flask) -> str:
    """Which database and version, and how big the generations table ended up."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            version = db.session.execute(sa.text("SHOW server_version")).scalar_one()
            size = db.session.execute(sa.text(
                "SELECT pg_size_pretty(pg_table_size('generations')), "
                "pg_size_pretty(pg_indexes_size('generations')), current_setting('shared_buffers')")).one()
            db.session.rollback()
            return (f"PostgreSQL {version} (generations: table {size[0]}, indexes {size[1]}; "
                    f"shared_buffers {size[2]})")
        path = Path(db.engine.url.database or "")
        megabytes = path.stat().st_size / 1e6 if path.exists() else 0.0
        return f"SQLite {sqlite3.sqlite_version} (file {megabytes:.0f} MB)"


def command_line(argv: list[str]) -> str:
    """The command as run, with the database URL named but its host and credentials left out."""
    env = "DATABASE_URL=postgresql://… " if os.environ.get("DATABASE_URL") else ""
    return f"{env}.venv/bin/python benchmarks/gallery_pages.py {' '.join(argv)}".strip()


@dataclass
class Report:
    """Everything the Markdown report shows."""

    argv: list[str]
    stats: LoadStats
    database: str
    timings: list[Timing]
    plans: dict[str, str]
    load: float = 0.0
    trigram_timings: list[Timing] = field(default_factory=list)
    trigram_plans: dict[str, str] = field(default_factory=dict)


def print_report(report: Report) -> None:
    """The Markdown report on stdout."""
    stats = report.stats
    baseline = report.timings[0].median
    lines = [
        "## Gallery pages benchmark", "",
        f"- Command: `{command_line(report.argv)}`",
        f"- N: {stats.generations:,} generations in batches of {BATCH_SIZE} (one created_at per batch), "
        f"{stats.images:,} with an image; {stats.needles} prompts mention '{NEEDLE}'; "
        f"{stats.filtered_ultra} filtered ultra images; loaded in {stats.seconds:.1f} s",
        f"- Database: {report.database}",
        f"- Machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}; "
        f"Python {platform.python_version()} on {platform.platform()}; load average {report.load:.1f} at the start",
        f"- Each case: GET through the Flask test client, {WARMUP_REQUESTS} warm-up requests then "
        f"{len(report.timings[0].wall_ms)} timed; GALLERY_PAGE_SIZE={PAGE_SIZE}; gallery_page() is the query "
        "and ORM part of the request, the rest is routing and templates", "",
        *table_rows(report.timings, baseline), "",
    ]
    if report.trigram_timings:
        lines += ["### What-if: a pg_trgm GIN index on generations.prompt (benchmark database only)", "",
                  *table_rows(report.trigram_timings, baseline), ""]
    for title, plan in [*report.plans.items(), *report.trigram_plans.items()]:
        lines += [f"### Plan: {title}", "", "```", plan, "```", ""]
    print("\n".join(lines))


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000, help="generations to load (default 100000)")
    parser.add_argument("--pages", default="1,10,100,1000", help="page numbers to time (default 1,10,100,1000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per case (default 20)")
    parser.add_argument("--follow", type=int, default=4, help="pages of the search and filter to time (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the data (default 1)")
    parser.add_argument("--try-trigram", action="store_true",
                        help="PostgreSQL only: then add a pg_trgm GIN index on prompt and time the search again")
    args = parser.parse_args(argv)
    args.page_numbers = sorted({1, *(int(part) for part in args.pages.split(",") if part.strip())})
    if args.images < 1 or args.repeat < 1 or args.follow < 1 or args.page_numbers[0] < 1:
        parser.error("--images, --repeat, --follow and every page number must be at least 1")
    return args


def measure(app: Flask, args: argparse.Namespace, spy: SqlSpy) -> tuple[list[Timing], dict[str, str]]:
    """Walk the chains once, time every case, and explain the deepest page and the search."""
    client = app.test_client()
    follow = list(range(1, args.follow + 1))
    deep = chain_cases(client, "/all/", "", args.page_numbers)
    search = chain_cases(client, SEARCH_URL, f"q={NEEDLE}, ", follow)
    filtered = chain_cases(client, FILTER_URL, "status=filtered&model=ultra, ", follow)
    # Every sort pages by keyset: the same page numbers of each, and the Starred filter.
    oldest = chain_cases(client, "/all/?sort=oldest", "sort=oldest, ", args.page_numbers)
    rated = chain_cases(client, "/all/?sort=rating", "sort=rating, ", args.page_numbers)
    starred = chain_cases(client, "/all/?starred=1", "starred, ", follow)
    cases = [*deep, *search, *filtered, *oldest, *rated, *starred]
    say(f"timing {len(cases)} cases x {args.repeat} requests")
    with PageClock().installed() as clock:
        timings = time_cases(client, cases, args.repeat, spy, clock)
    plans = {f"{case.label} ({case.url})": explain(app, client, spy, case.url)
             for case in (deep[-1], search[0], search[-1], filtered[0], oldest[-1], rated[0], rated[-1], starred[-1])}
    return timings, plans


def remeasure_search(app: Flask, args: argparse.Namespace, spy: SqlSpy) -> tuple[list[Timing], dict[str, str]]:
    """The search cases again, after the what-if trigram index."""
    client = app.test_client()
    search = chain_cases(client, SEARCH_URL, f"q={NEEDLE} + trigram index, ", list(range(1, args.follow + 1)))
    with PageClock().installed() as clock:
        timings = time_cases(client, search, args.repeat, spy, clock)
    plans = {f"{case.label} ({case.url})": explain(app, client, spy, case.url) for case in (search[0], search[-1])}
    return timings, plans


def run(args: argparse.Namespace, argv: list[str], tmp: Path) -> Report:
    """Create, load, measure and describe; the caller's context managers drop everything afterwards."""
    with throwaway_database(tmp / "db") as database_url, private_redis(tmp / "redis") as redis_url:
        app = create_app(TestConfig(str(tmp / "instance"), SQLALCHEMY_DATABASE_URI=database_url,
                                    REDIS_URL=redis_url, MEDIA_ROOT=str(tmp / "media"),
                                    GALLERY_PAGE_SIZE=PAGE_SIZE))
        try:
            with app.app_context():
                upgrade()
                engine = db.engine
            stats = load_generations(app, args.images, args.seed)
            rated, starred = load_marks(app, args.seed)
            say(f"rated {rated:,} and starred {starred:,} images")
            settle_postgres(app)
            spy = SqlSpy(engine)
            # Other work on the machine skews timings; the report says how busy it was.
            load = os.getloadavg()[0]
            # Requests run outside any app context of ours, so each gets a fresh session as in production.
            timings, plans = measure(app, args, spy)
            report = Report(argv, stats, database_facts(app), timings, plans, load)
            if args.try_trigram and add_trigram_index(app):
                report.trigram_timings, report.trigram_plans = remeasure_search(app, args, spy)
            return report
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gallery-bench-") as tmp:
        for folder in ("db", "redis", "instance", "media"):
            (Path(tmp) / folder).mkdir()
        report = run(args, argv, Path(tmp))
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
