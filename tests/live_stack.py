"""The real stack for browser tests: migrations, gunicorn and `python worker.py` as child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from rq import Worker

from app.processes.group import ProcessGroup, free_port, http_ok

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _environment(env: dict[str, str], concurrency: int) -> dict[str, str]:
    # IMAGE_GENERATOR_LOCAL=0 unless env says otherwise: a scripts/run.py running in this checkout is not joined.
    return {**os.environ, "IMAGE_GENERATOR_LOCAL": "0", **env, "PYTHONUNBUFFERED": "1",
            "WORKER_CONCURRENCY": str(concurrency)}


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path, append: bool = False,
          cwd: Path = ROOT) -> ProcessGroup:
    """Start a child in its own process group (in cwd), its output in log_dir/<name>.log (appended to, if asked)."""
    return ProcessGroup(name, args, env=env, cwd=cwd, log=log_dir / f"{name}.log", append=append).start()


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


def start_worker(env: dict[str, str], log_dir: Path, concurrency: int) -> ProcessGroup:
    """Start `python worker.py` in its own process group, appending to log_dir/worker.log; do not wait for it."""
    return spawn("worker", [sys.executable, "worker.py"], _environment(env, concurrency), log_dir, append=True)


@contextmanager
def worker_pool(env: dict[str, str], log_dir: Path, concurrency: int) -> Iterator[ProcessGroup]:
    """Run `python worker.py` until every one of its workers is listening; stop it afterwards."""
    with spawn("worker", [sys.executable, "worker.py"], _environment(env, concurrency), log_dir) as worker:
        redis = Redis.from_url(env["REDIS_URL"])
        # Slots are threads: one RQ worker per process (WORKER_PROCESSES, by default one per core).
        processes = int(env.get("WORKER_PROCESSES") or min(os.cpu_count() or 1, concurrency))
        worker.wait_until(lambda: len(Worker.all(connection=redis)) >= processes, "the workers")
        yield worker


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
    with spawn("web", gunicorn, _environment(env, concurrency), log_dir) as web:
        # /healthz, not /: it answers 200 in either AUTH_MODE without signing in or making the local user.
        web.wait_until(http_ok(base_url + "/healthz"), "the web server")
        with worker_pool(env, log_dir, concurrency):
            yield base_url
