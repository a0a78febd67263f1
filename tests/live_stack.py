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


@contextmanager
def live_stack(env: dict[str, str], log_dir: Path, concurrency: int) -> Iterator[str]:
    """Migrate, start gunicorn and the worker pool with env, yield the base URL, stop everything."""
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "WORKER_CONCURRENCY": str(concurrency)}
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=full_env,
                   check=True, capture_output=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen] = []
    try:
        for name, args in [
            ("web", [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                     "wsgi:app"]),
            ("worker", [sys.executable, "worker.py"]),
        ]:
            log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
            processes.append(subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            log.close()
        _wait_until(lambda: _web_is_up(base_url + "/"), "the web server", processes)
        redis = Redis.from_url(env["REDIS_URL"])
        _wait_until(lambda: len(Worker.all(connection=redis)) >= concurrency, "the workers", processes)
        yield base_url
    finally:
        for process in reversed(processes):
            _stop(process)
