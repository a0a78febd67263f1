#!/usr/bin/env python3
"""Run the whole app on this machine: migrations, Redis, the RQ worker and gunicorn (--debug: Flask's server)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from bootstrap import REPO_ROOT, bootstrap

if TYPE_CHECKING:  # importable only once bootstrap() has run
    from app.processes.redis_server import EmbeddedRedis

STOP_TIMEOUT_SECONDS = 10.0
COLD_STOP_SECONDS = 3.0
_PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def say(message: str) -> None:
    """Print a line from this script, told apart from the children's output."""
    print(f"[run] {message}", flush=True)


def redact_url(url: str) -> str:
    """Return url with any password (in the netloc or the query) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***" if "password" in k.lower() else v) for k, v in pairs], safe="*")
    # Built by hand: urlunsplit would turn unix:///path into unix:/path.
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class Children:
    """Child processes, each leading its own process group, stopped together."""

    def __init__(self, preexec_fn: Callable[[], None]) -> None:
        """Start empty; preexec_fn runs in each child before exec."""
        self.preexec_fn = preexec_fn
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_signal: int | None = None

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: note the request; the waiting loops act on it."""
        self.stop_signal = signum

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `python args...` in the repository, in a new session and process group."""
        say(f"starting {name}: python {' '.join(args)}")
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            # Own group: the terminal's Ctrl-C reaches only this script, which then
            # stops everything in order, and killpg also reaches grandchildren.
            start_new_session=True,
            # Only calls prctl between fork and exec, which is safe with threads.
            preexec_fn=self.preexec_fn,  # noqa: PLW1509
        )
        self.processes[name] = process
        return process

    def first_exited(self) -> str | None:
        """Return the name of a child that has exited, if any."""
        return next((name for name, p in self.processes.items() if p.poll() is not None), None)

    def wait(self, name: str) -> int | None:
        """Wait for one child to finish and forget it; None if a stop was requested first."""
        process = self.processes[name]
        while process.poll() is None:
            if self.stop_signal is not None:
                return None
            time.sleep(POLL_SECONDS)
        del self.processes[name]
        return process.returncode

    def stop_all(self) -> None:
        """Stop every child: SIGTERM, a second SIGTERM after the grace period, then SIGKILL."""
        if not self.processes:
            return
        say(f"stopping {', '.join(self.processes)} ...")
        # SIGTERM goes to the leaders only: each stops its own children its own way
        # (an RQ worker lets the running job finish; its work horse would die at once
        # on a SIGTERM of its own).
        self._terminate_all()
        if not self._wait_for_all(STOP_TIMEOUT_SECONDS):
            # A second SIGTERM is RQ's cold shutdown: the worker kills the job's work
            # horse, which runs in its own session where killpg below cannot reach it.
            say(f"still running after {STOP_TIMEOUT_SECONDS:.0f} s: SIGTERM again, then SIGKILL")
            self._terminate_all()
            self._wait_for_all(COLD_STOP_SECONDS)
        # Whole groups, to sweep up grandchildren that outlived their parent.
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self._wait_for_all(COLD_STOP_SECONDS)
        self.processes.clear()

    def _terminate_all(self) -> None:
        """Send SIGTERM to every child still running."""
        for process in self.processes.values():
            process.terminate()

    def _wait_for_all(self, timeout: float) -> bool:
        """Wait until every child has exited (and reap it); False on timeout."""
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in self.processes.values()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def adopt_orphans() -> None:
    """Become the parent of orphaned descendants (Linux), so kill_adopted_orphans finds them."""
    # Without this, a process that escaped its group (RQ's work horse starts its own
    # session) would outlive a worker that had to be killed.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def kill_adopted_orphans() -> None:
    """SIGKILL and reap whatever is still a child of this process; call after all else stopped."""
    children_file = Path(f"/proc/self/task/{os.getpid()}/children")
    deadline = time.monotonic() + COLD_STOP_SECONDS
    while children_file.exists() and time.monotonic() < deadline:
        # Reap first, so that only live processes are left to report and kill.
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        pids = [int(pid) for pid in children_file.read_text().split()]
        if not pids:
            return
        say(f"killing leftover process(es) {', '.join(map(str, pids))}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def web_is_up(port: int) -> bool:
    """Tell whether something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def print_summary(url: str, redis_description: str) -> None:
    """Say where the app is and what it runs on, without printing secrets."""
    if os.environ.get("STABILITY_API_KEY"):
        provider = "Stability AI (STABILITY_API_KEY is set)"
    else:
        provider = (
            "demo - offline placeholder images. "
            "Put STABILITY_API_KEY=... in .env and restart to generate real images."
        )
    database = os.environ.get("DATABASE_URL")
    database = redact_url(database) if database else "SQLite in instance/ (DATABASE_URL is unset)"
    print(
        f"\n  Image Generator is running at {url}\n"
        f"  Provider: {provider}\n"
        f"  Database: {database}\n"
        f"  Redis:    {redis_description}\n"
        "  Press Ctrl-C to stop.\n",
        flush=True,
    )


def migrate(children: Children) -> bool:
    """Apply database migrations; False if they failed or a stop was requested."""
    if not (REPO_ROOT / "migrations").is_dir():
        say("no migrations/ directory yet: skipping `flask db upgrade`")
        return True
    children.start("migrations", "-m", "flask", "--app", "wsgi", "db", "upgrade")
    status = children.wait("migrations")
    if status:
        say(f"`flask db upgrade` failed (exit status {status}); not starting the app")
    return status == 0


def supervise(children: Children, port: int, redis: Redis) -> int:
    """Announce the app once it answers, then wait for a stop request or a child's exit."""
    announced = False
    while children.stop_signal is None:
        if redis.server is not None and not redis.server.is_running:
            say(f"the embedded Redis exited unexpectedly (see {redis.server.log_file}); stopping everything")
            return 1
        exited = children.first_exited()
        if exited is not None:
            status = children.processes[exited].returncode
            say(f"the {exited} exited unexpectedly (status {status}); stopping everything")
            if exited == "web server":
                say(f"if port {port} is taken, set PORT to another port (e.g. PORT=5001)")
            return 1
        if not announced and web_is_up(port):
            print_summary(f"http://127.0.0.1:{port}/", redis.description)
            announced = True
        time.sleep(POLL_SECONDS)
    say(f"received {signal.Signals(children.stop_signal).name}")
    return 0


def web_server_args(port: int, debug: bool) -> list[str]:
    """Return the arguments for gunicorn on 127.0.0.1:port, as production runs it; Flask's debug server if asked."""
    if debug:
        # The reloader and the in-browser debugger, for working on the code; never for sharing.
        return ["-m", "flask", "--app", "wsgi", "run", "--host", "127.0.0.1", "--port", str(port), "--debug"]
    # The same settings file as production (threads, metrics clean-up), bound to loopback only.
    return ["-m", "gunicorn", "-c", "python:app.gunicorn_config", "--bind", f"127.0.0.1:{port}", "wsgi:app"]


def parse_arguments() -> argparse.Namespace:
    """Read the command line: only --debug."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="serve with Flask's development server (reloader and debugger) instead of gunicorn")
    return parser.parse_args()


def prepare_environment() -> int:
    """Load .env, set what every child needs, and return the web server's port."""
    os.chdir(REPO_ROOT)
    sys.path.insert(0, str(REPO_ROOT))
    # Imported here: the package is only there once bootstrap() has run.
    from dotenv import load_dotenv

    load_dotenv(REPO_ROOT / ".env", override=False)
    # Children inherit os.environ; this lets the app keep a per-install secret key.
    os.environ["IMAGE_GENERATOR_LOCAL"] = "1"
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    (REPO_ROOT / "instance").mkdir(exist_ok=True)
    port = os.environ.get("PORT") or "5000"
    if not port.isdigit():
        sys.exit(f"PORT must be a port number, not {port!r}")
    return int(port)


class Redis(NamedTuple):
    """The Redis the app uses: how to describe it, and the embedded server if one was started."""

    description: str
    server: EmbeddedRedis | None


def use_redis(cleanup: contextlib.ExitStack) -> Redis:
    """Use REDIS_URL if set, else start the embedded Redis and point REDIS_URL at it."""
    if os.environ.get("REDIS_URL"):
        return Redis(redact_url(os.environ["REDIS_URL"]), None)
    from app.processes.redis_server import EmbeddedRedis

    server = cleanup.enter_context(EmbeddedRedis(REPO_ROOT / "instance" / "redis"))
    cleanup.callback(say, "stopping embedded Redis ...")
    os.environ["REDIS_URL"] = server.url
    say(f"REDIS_URL is unset: started an embedded Redis on {server.url}")
    return Redis(f"embedded redis-server, data in {server.data_dir}", server)


def main() -> int:
    """Start everything, wait, and stop everything that was started."""
    arguments = parse_arguments()
    bootstrap()
    port = prepare_environment()
    from app.processes.group import exit_with_parent

    adopt_orphans()
    children = Children(preexec_fn=exit_with_parent)
    for signum in STOP_SIGNALS:
        signal.signal(signum, children.request_stop)
    # Undone in reverse order: the app's processes, then Redis, then any orphans.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(say, "stopped")
        cleanup.callback(kill_adopted_orphans)
        try:
            # Redis comes first so that the migrations see the same settings as the app.
            redis = use_redis(cleanup)
            cleanup.callback(children.stop_all)
            if not migrate(children):
                return 0 if children.stop_signal is not None else 1
            children.start("worker", "worker.py")
            children.start("web server", *web_server_args(port, arguments.debug))
            return supervise(children, port, redis)
        except RuntimeError as error:
            say(f"error: {error}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
