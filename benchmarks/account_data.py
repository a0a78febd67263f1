"""Measure an account's export (time and memory) and deletion (time) against their ideals, on disk or in S3.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/account_data.py [--images 300] [--size-kb 1024] [--store local|s3]

It creates a throwaway database (PostgreSQL on DATABASE_URL's server when that is set, else SQLite) and a private
Redis, runs the migrations, and gives one account N images of random (incompressible) bytes, each with a 20 KB
thumbnail, written to the store as the worker writes them (`--store s3` starts SeaweedFS from tests/seaweed.py).

- export: the whole ZIP of `flask users export` built in this process (AccountExport.chunks, bytes counted and
  dropped), against the ideal of reading the same files from the store one after another and taking their CRC-32
  (what any ZIP must do); its memory is tracemalloc's peak during a second export, against the store's read size
  (256 KiB) and the whole export's size.
- deletion: erasure.run (the job's work) against the ideal of deleting the same number of files from the store in a
  loop, nothing else.

Progress goes to stderr, the Markdown report to stdout; everything it made is gone at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, so neither the app package nor the tests' helpers are on the path yet.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402
from conftest import private_redis, throwaway_database  # noqa: E402  (needs the path above)
from flask import Flask  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from seaweed import CREDENTIALS, SeaweedFS  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.users import create_user  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.generations import erasure  # noqa: E402
from app.media.export import AccountExport  # noqa: E402
from app.media_store.base import CHUNK, new_file_name  # noqa: E402
from app.models import Batch, Generation, Status, User  # noqa: E402
from app.services import services  # noqa: E402

THUMB_BYTES = 20_000
PER_BATCH = 10


def say(message: str) -> None:
    """Progress, to stderr."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def store_settings(kind: str, tmp: Path) -> Iterator[dict[str, object]]:
    """The app's settings for the store asked for (a SeaweedFS of its own for s3)."""
    if kind == "local":
        yield {"MEDIA_STORAGE": "local", "MEDIA_ROOT": str(tmp / "media")}
        return
    os.environ.update(CREDENTIALS, AWS_EC2_METADATA_DISABLED="true")
    server = SeaweedFS(tmp / "seaweed")
    server.start()
    try:
        yield {"MEDIA_STORAGE": "s3", "S3_BUCKET": server.bucket, "S3_ENDPOINT_URL": server.endpoint_url,
               "S3_REGION": "us-east-1", "S3_PREFIX": "bench/", "MEDIA_ROOT": str(tmp / "media")}
    finally:
        server.stop()


def put_files(app: Flask, count: int, size: int) -> list[str]:
    """Write `count` random files of `size` bytes to the current store; return their names."""
    store = services(app).stores.current
    names = [new_file_name("image/png") for _ in range(count)]
    for name in names:
        store.put(name, os.urandom(size), "image/png")
    return names


def make_account(app: Flask, images: int, size: int) -> int:
    """An account with `images` finished images (and thumbnails) in the store; its id."""
    with app.app_context():
        user = create_user("bench@example.com", password="benchmark password")
        store = services(app).stores.current
        files, thumbs = put_files(app, images, size), put_files(app, images, THUMB_BYTES)
        for start in range(0, images, PER_BATCH):
            batch = Batch(owner_id=user.id, generations=[
                Generation(position=i, prompt=f"a lighthouse number {start + i}", provider="demo", owner_id=user.id,
                           status=Status.SUCCEEDED, file_name=files[start + i], thumb_name=thumbs[start + i],
                           mime_type="image/png", byte_size=size, storage=store.name)
                for i in range(min(PER_BATCH, images - start))])
            db.session.add(batch)
        db.session.commit()
        return user.id


def measure_export(app: Flask, user_id: int, traced: bool = False) -> tuple[float, int, int]:
    """Seconds and bytes of one whole export, and tracemalloc's peak during it when traced (which slows it)."""
    with app.app_context():
        export = AccountExport(db.session.get(User, user_id), services(app).stores)
        if traced:
            tracemalloc.start()
        started, written = time.perf_counter(), 0
        for chunk in export.chunks():
            written += len(chunk)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
        return seconds, written, peak


def ideal_read(app: Flask, user_id: int) -> float:
    """Seconds to read every image file of the account from its store, one after another, and take its CRC-32
    (the work any ZIP needs), and nothing else."""
    with app.app_context():
        names = list(db.session.scalars(sa.select(Generation.file_name).where(Generation.owner_id == user_id)))
        store = services(app).stores.current
        started = time.perf_counter()
        for name in names:
            crc = 0
            for chunk in store.open(name).chunks():
                crc = zlib.crc32(chunk, crc)
        return time.perf_counter() - started


def measure_deletion(app: Flask, user_id: int) -> float:
    """Seconds the job's work takes to remove the account: its files, rows and the account."""
    with app.app_context():
        erasure.request(db.session.get(User, user_id), queue_job=False)
        started = time.perf_counter()
        erased = erasure.run(user_id)
        seconds = time.perf_counter() - started
        assert erased.done, erased
        return seconds


def ideal_deletion(app: Flask, count: int) -> float:
    """Seconds to delete `count` small files from the store in a loop."""
    with app.app_context():
        names = put_files(app, count, THUMB_BYTES)
        store = services(app).stores.current
        started = time.perf_counter()
        for name in names:
            store.delete(name)
        return time.perf_counter() - started


def main() -> None:
    """Make the account, measure, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size-kb", type=int, default=1024)
    parser.add_argument("--store", choices=("local", "s3"), default="local")
    args = parser.parse_args()
    size = args.size_kb * 1024
    with tempfile.TemporaryDirectory() as folder, store_settings(args.store, Path(folder)) as stores, \
            throwaway_database(Path(folder)) as database_url, private_redis(Path(folder) / "redis") as redis_url:
        app = create_app(TestConfig(folder, SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url,
                                    AUTH_MODE="accounts", **stores))
        with app.app_context():
            upgrade()
        say(f"writing {args.images} images of {args.size_kb} KB to {args.store}")
        user_id = make_account(app, args.images, size)
        read = ideal_read(app, user_id)
        say("exporting")
        seconds, written, _ = measure_export(app, user_id)
        _, _, peak = measure_export(app, user_id, traced=True)
        say("deleting")
        deleting = measure_deletion(app, user_id)
        ideal = ideal_deletion(app, 2 * args.images)
        with app.app_context():
            db.engine.dispose()
        services(app).close()
    report(args, seconds, written, peak, read, deleting, ideal)


def report(args: argparse.Namespace, seconds: float, written: int, peak: int, read: float, deleting: float,
           ideal: float) -> None:
    """The Markdown table, to stdout."""
    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"{args.images} images of {args.size_kb} KB (+ 20 KB thumbnails) in {args.store}, {database}, "
          f"Python {platform.python_version()}, {os.cpu_count()} cores\n")
    print("| measure | value | ideal | ratio |\n|---|---:|---:|---:|")
    print(f"| export: seconds for {written / 1e6:.0f} MB | {seconds:.2f} | {read:.2f} (reading the files, CRC-32) | "
          f"{seconds / read:.2f} |")
    print(f"| export: peak memory (tracemalloc) | {peak / 1024:.0f} KiB | {CHUNK // 1024} KiB (one read) | "
          f"{peak / CHUNK:.1f} |")
    print(f"| export: peak memory against the ZIP's size | {peak / 1024:.0f} KiB | {written / 1024:.0f} KiB | "
          f"{peak / written:.4f} |")
    print(f"| deletion: seconds for {2 * args.images} files and their rows | {deleting:.2f} | {ideal:.2f} "
          f"(deleting the files alone) | {deleting / ideal:.2f} |")


if __name__ == "__main__":
    main()
