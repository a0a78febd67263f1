"""The real stack for browser tests: migrations, gunicorn and `python worker.py` as child processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from redis import Redis
from rq import Worker

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _wait_until(check, what: str, processes: list[subprocess.Popen], timeout: float = 60.0) -> None:  # noqa: ANN001
    """Poll check() until true; fail early, naming what died, if a child exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode} while waiting for {what}")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _web_is_up(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _environment(env: dict[str, str], concurrency: int) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONUNBUFFERED": "1", "WORKER_CONCURRENCY": str(concurrency)}


def _spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a child in its own process group (in cwd), its output in log_dir/<name>.log."""
    with open(log_dir / f"{name}.log", "wb") as log:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def migrate(env: dict[str, str]) -> None:
    """Create the schema with the production command."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                   env=_environment(env, 1), check=True, capture_output=True)


@contextmanager
def worker_pool(env: dict[str, str], log_dir: Path, concurrency: int) -> Iterator[subprocess.Popen]:
    """Run `python worker.py` until every one of its workers is listening; stop it afterwards."""
    process = _spawn("worker", [sys.executable, "worker.py"], _environment(env, concurrency), log_dir)
    try:
        redis = Redis.from_url(env["REDIS_URL"])
        _wait_until(lambda: len(Worker.all(connection=redis)) >= concurrency, "the workers", [process])
        yield process
    finally:
        _stop(process)


@contextmanager
def live_stack(env: dict[str, str], log_dir: Path, concurrency: int) -> Iterator[str]:
    """Migrate, start gunicorn and the worker pool with env, yield the base URL, stop everything."""
    migrate(env)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    gunicorn = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "wsgi:app"]
    web = _spawn("web", gunicorn, _environment(env, concurrency), log_dir)
    try:
        _wait_until(lambda: _web_is_up(base_url + "/"), "the web server", [web])
        with worker_pool(env, log_dir, concurrency):
            yield base_url
    finally:
        _stop(web)
