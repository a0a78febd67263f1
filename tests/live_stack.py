"""The real stack for browser tests: migrations, gunicorn and `python worker.py` as child processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from app.processes.group import exit_with_parent
from app.processes.redis_server import redis_server_binary

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


def _spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, append: bool = False,
           cwd: Path = ROOT) -> subprocess.Popen:
    """Start a child in its own process group (in cwd), its output in log_dir/<name>.log (appended to, if asked)."""
    with open(log_dir / f"{name}.log", "ab" if append else "wb") as log:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _flask(env: dict[str, str], *args: str) -> None:
    """Run one `flask` command as an operator would, failing with its output if it fails."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=_environment(env, 1), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args[:3])} exited with {done.returncode}:\n{done.stdout}{done.stderr}")


def migrate(env: dict[str, str]) -> None:
    """Create the schema with the production command."""
    _flask(env, "db", "upgrade")


@dataclass(frozen=True)
class Account:
    """Someone the stack knows: made with `flask users create`, then signed in through /login."""

    email: str
    password: str
    admin: bool = False
    monthly_credits: float | None = None  # None: no cap


def create_user(env: dict[str, str], account: Account) -> None:
    """Make the account with the real CLI, as the README tells an operator to."""
    credits = "none" if account.monthly_credits is None else f"{account.monthly_credits:g}"
    _flask(env, "users", "create", account.email, "--password", account.password, "--monthly-credits", credits,
           *(["--admin"] if account.admin else []))


def start_worker(env: dict[str, str], log_dir: Path, concurrency: int) -> subprocess.Popen:
    """Start `python worker.py` in its own process group, appending to log_dir/worker.log; do not wait for it."""
    return _spawn("worker", [sys.executable, "worker.py"], _environment(env, concurrency), log_dir, append=True)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a child's whole process group at once (the pool and every worker it forked), as a crash would."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop a child started here: SIGTERM its process group, then SIGKILL whatever is left."""
    _stop(process, timeout)


class DisposableRedis:
    """A redis-server on a loopback TCP port that keeps nothing on disk: stopped and started again, it is empty."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL clients use; the same across restarts."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(redis_server_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(self.data_dir), "--daemonize", "no"]
        with open(self.data_dir / "redis.log", "ab") as log:
            self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True, preexec_fn=exit_with_parent)  # noqa: PLW1509
        client = Redis.from_url(self.url, socket_timeout=1)
        _wait_until(lambda: _answers_ping(client), "redis-server", [self._process], timeout=10)
        client.close()

    def stop(self) -> None:
        """Kill the server: what it held is gone (nothing was saved)."""
        if self._process is not None:
            kill_group(self._process)
            self._process = None

    def __enter__(self) -> DisposableRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers_ping(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except RedisError:
        return False


@contextmanager
def worker_pool(env: dict[str, str], log_dir: Path, concurrency: int) -> Iterator[subprocess.Popen]:
    """Run `python worker.py` until every one of its workers is listening; stop it afterwards."""
    process = _spawn("worker", [sys.executable, "worker.py"], _environment(env, concurrency), log_dir)
    try:
        redis = Redis.from_url(env["REDIS_URL"])
        # Slots are threads: one RQ worker per process (WORKER_PROCESSES, by default one per core).
        processes = int(env.get("WORKER_PROCESSES") or min(os.cpu_count() or 1, concurrency))
        _wait_until(lambda: len(Worker.all(connection=redis)) >= processes, "the workers", [process])
        yield process
    finally:
        _stop(process)


@contextmanager
def live_stack(env: dict[str, str], log_dir: Path, concurrency: int,
               accounts: Iterable[Account] = ()) -> Iterator[str]:
    """Migrate, create the accounts, start gunicorn and the worker pool with env, yield the base URL, stop all."""
    migrate(env)
    for account in accounts:
        create_user(env, account)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    gunicorn = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "wsgi:app"]
    web = _spawn("web", gunicorn, _environment(env, concurrency), log_dir)
    try:
        # /healthz, not /: it answers 200 in either AUTH_MODE without signing in or making the local user.
        _wait_until(lambda: _web_is_up(base_url + "/healthz"), "the web server", [web])
        with worker_pool(env, log_dir, concurrency):
            yield base_url
    finally:
        _stop(web)
