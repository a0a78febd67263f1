"""A bad setting stops every entry point at once with one clear line; `flask worker` runs the workers."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from app.generations.queue import live_worker_count
from app.processes.group import ProcessGroup

pytestmark = pytest.mark.processes
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BAD_SETTINGS = [
    ("STABILITY_RATE_LIMIT", "abc", "STABILITY_RATE_LIMIT: rate limit must be REQUESTS/SECONDS"),
    ("STABILITY_LOCKOUT_SECONDS", "0", "STABILITY_LOCKOUT_SECONDS must be a number above 0, got '0'"),
    ("WORKER_CONCURRENCY", "-3", "WORKER_CONCURRENCY must be an integer of at least 1, got -3"),
    ("STABILITY_TIMEOUT", "5,soon", "STABILITY_TIMEOUT must be seconds above 0"),
    ("REAPER_STALE_SECONDS", "-1", "REAPER_STALE_SECONDS must be a number above 0"),
    ("AUTH_MODE", "open", "AUTH_MODE must be one of accounts, none"),
]
COMMANDS = {
    "python worker.py": [sys.executable, "worker.py"],
    "flask": [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
    "gunicorn": [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "wsgi:app"],
}


def environment(tmp_path, **extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("STABILITY_", "REAPER_"))}
    return {**env, "SECRET_KEY": "startup-test", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **extra}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("name", "value", "message"), BAD_SETTINGS)
def test_a_bad_setting_stops_start_up_naming_the_variable(tmp_path, command, name, value, message):
    started = time.monotonic()
    result = subprocess.run(COMMANDS[command], cwd=ROOT, env=environment(tmp_path, **{name: value}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_flask_worker_runs_the_workers_with_the_cli_app_context(tmp_path, migrated, redis_url):
    env = environment(tmp_path, DATABASE_URL=migrated, REDIS_URL=redis_url, WORKER_CONCURRENCY="1",
                      MEDIA_ROOT=str(tmp_path / "media"))
    worker = ProcessGroup("flask worker", [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT,
                          env=env, log=tmp_path / "worker.log")
    redis = Redis.from_url(redis_url)
    try:
        with worker:
            worker.wait_until(lambda: live_worker_count(redis) >= 1, "a live worker", timeout=30)
    finally:
        for key in redis.scan_iter(match="imagegen:worker-alive:*"):
            redis.delete(key)
        redis.close()
