#!/usr/bin/env python3
"""Big results stay cheap: 20 fast upscales in flight at once, each answered with a 16 MP PNG.

Runs the real worker tier (`python worker.py`) against a throwaway PostgreSQL database, a private Redis and the
fake Stability API in this process, as benchmarks/throughput.py does. First --images source images (1024 × 1024,
from Ultra) are made and stored; then one edit batch upscales all of them (upscale-fast: 4×, 4096 × 4096) with
WORKER_CONCURRENCY = --images, so every request is in flight together: the fake holds its answers until all of them
have arrived (or --latency has passed) and then answers each with a 4096 × 4096 photo-like PNG of tens of MB. It
reports the worker tier's peak PSS (Pss of /proc/<pid>/smaps_rollup summed over worker.py's process group, every
0.2 s) during the upscales, against the 600 MB target, and its CPU per result (utime + stime over the group).

    DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres .venv/bin/python benchmarks/edits.py [--images 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

import throughput  # noqa: E402  (puts the app and the test fake on the path)
from conftest import private_redis, throwaway_database  # noqa: E402
from PIL import Image  # noqa: E402

from app.accounts.users import local_user  # noqa: E402
from app.extensions import db  # noqa: E402
from app.generations import edits, lifecycle  # noqa: E402
from app.models import FINAL_STATUSES, Generation, Status  # noqa: E402
from app.providers.options import GenerationOptions  # noqa: E402

TARGET_PSS_MB = 600.0
UPSCALE_SIDE = 4096


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20, help="fast upscales in flight at once")
    parser.add_argument("--latency", type=float, default=3.0, help="the longest the fake holds its answers")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def upscaled_photo() -> bytes:
    """A 4096 × 4096 photo-like PNG, encoded once (Pillow's defaults, as most encoders): what each upscale returns."""
    photo = throughput.photo_like(7).resize((UPSCALE_SIDE, UPSCALE_SIDE), Image.Resampling.BICUBIC)
    grain = Image.effect_noise((UPSCALE_SIDE, UPSCALE_SIDE), 6.0)
    photo = Image.composite(photo, photo.convert("L").convert("RGB"), grain.point(lambda v: 255 if v > 128 else 200))
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    return buffer.getvalue()


def wait_final(app, ids: list[int], worker, timeout: float) -> None:  # noqa: ANN001
    """Until every row is final (a worker that died or a deadline ends it with an error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            statuses = [db.session.get(Generation, gid).status for gid in ids]
            db.session.remove()
        if all(status in FINAL_STATUSES for status in statuses):
            return
        if worker.returncode is not None:
            raise SystemExit(f"worker.py exited with {worker.returncode}")
        time.sleep(0.1)
    raise SystemExit(f"not final within {timeout:.0f} s: {statuses}")


def run(args: argparse.Namespace) -> dict[str, float]:
    """Bring the stack up, make the sources, upscale them all at once; the numbers."""
    with contextlib.ExitStack() as cleanup:
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="imagegen-edits-")))
        database_url = cleanup.enter_context(throwaway_database(tmp))
        redis_url = cleanup.enter_context(private_redis(tmp / "redis"))
        throughput.say("encoding the 16 MP answer once")
        answer = upscaled_photo()
        throughput.fake_stability.render_image = lambda width, height, fmt, digest, filtered: (
            answer if width == UPSCALE_SIDE else _source_png(width, height))
        fake = throughput.fake_stability.FakeStability(api_key=throughput.API_KEY, latency=args.latency,
                                            hold_until=args.images).start()
        cleanup.callback(fake.stop)
        env = throughput.stack_environment(database_url, redis_url, fake.base_url, tmp)
        env.update(WORKER_CONCURRENCY=str(args.images), STABILITY_RATE_LIMIT="140/10")
        app = throughput.in_process_app(env, tmp)
        cleanup.callback(throughput.dispose_engine, app)
        worker = throughput.spawn("worker.py", [sys.executable, "worker.py"], env, tmp / "worker.log")
        cleanup.callback(worker.stop, throughput.STOP_TIMEOUT_SECONDS)
        sampler = throughput.TierSampler(worker.pid)
        sampler.start()
        cleanup.callback(sampler.stop)
        with app.test_request_context():
            sources = lifecycle.create_batch(local_user(), [f"source {n}: a lighthouse at dusk"
                                                            for n in range(args.images)], GenerationOptions(
                model="ultra"))
            source_ids = [g.id for g in sources.generations]
        wait_final(app, source_ids, worker, 120)
        time.sleep(1.0)
        idle_kib = sampler.sample()
        sampler.reset_peak()
        cpu_before = sampler.cpu_seconds()
        fake.reset()
        throughput.say(f"upscaling {args.images} images at once")
        started = time.monotonic()
        with app.test_request_context():
            batch = edits.create_edit_batch(local_user(), source_ids, "upscale-fast", {})
            ids = [g.id for g in batch.generations]
        wait_final(app, ids, worker, 600)
        seconds = time.monotonic() - started
        cpu = sampler.cpu_seconds() - cpu_before
        with app.app_context():
            rows = [db.session.get(Generation, gid) for gid in ids]
            statuses = {row.status for row in rows}
            sizes = [row.byte_size or 0 for row in rows]
            dims = {(row.width, row.height) for row in rows}
        if statuses != {Status.SUCCEEDED}:
            raise SystemExit(f"not every upscale succeeded: {statuses}\n{throughput.tail(tmp / 'worker.log')}")
        return {"images": args.images, "answer_mb": len(answer) / 1e6, "stored_mb_mean": sum(sizes) / len(sizes) / 1e6,
                "result_size": f"{dims.pop()}", "max_in_flight": fake.max_concurrency,
                "idle_pss_mb": idle_kib / 1024, "peak_pss_mb": sampler.peak_kib / 1024,
                "cpu_ms_per_result": 1000 * cpu / args.images, "wall_seconds": seconds}


_SOURCES: dict[tuple[int, int], bytes] = {}


def _source_png(width: int, height: int) -> bytes:
    """The sources: one photo-like PNG per size, encoded once."""
    if (width, height) not in _SOURCES:
        buffer = io.BytesIO()
        throughput.photo_like(3, size=max(width, height)).resize((width, height)).save(buffer, "PNG")
        _SOURCES[(width, height)] = buffer.getvalue()
    return _SOURCES[(width, height)]


def main(argv: list[str] | None = None) -> None:
    """Run and print the report."""
    args = parse_args(argv)
    numbers = run(args)
    verdict = "within" if numbers["peak_pss_mb"] <= TARGET_PSS_MB else "OVER"
    print(f"{numbers['images']} fast upscales in flight ({numbers['max_in_flight']} at once at the fake), each "
          f"{numbers['result_size']}, answered as a {numbers['answer_mb']:.1f} MB PNG "
          f"(stored {numbers['stored_mb_mean']:.1f} MB each)")
    print(f"worker tier PSS: {numbers['idle_pss_mb']:.0f} MB idle, peak {numbers['peak_pss_mb']:.0f} MB "
          f"({verdict} the {TARGET_PSS_MB:.0f} MB target)")
    print(f"worker CPU per result: {numbers['cpu_ms_per_result']:.0f} ms; all {numbers['images']} final in "
          f"{numbers['wall_seconds']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
