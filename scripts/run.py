#!/usr/bin/env python3
"""Run the whole app on this machine: migrations, Redis, the RQ worker and gunicorn (--debug: Flask's server)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from bootstrap import REPO_ROOT, bootstrap

if TYPE_CHECKING:  # importable only once bootstrap() has run
    from app.processes.group import ProcessGroup
    from app.processes.redis_server import EmbeddedRedis

STOP_TIMEOUT_SECONDS = 10.0
COLD_STOP_SECONDS = 3.0
POLL_SECONDS = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# gunicorn's atoms: method, path, status, milliseconds.
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s %(M)s ms"


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
    """The app's processes, each leading its own process group, stopped together."""

    def __init__(self) -> None:
        """Start empty."""
        self.groups: dict[str, ProcessGroup] = {}
        self.stop_signal: int | None = None

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: note the request; the waiting loops act on it."""
        self.stop_signal = signum

    def start(self, name: str, *args: str) -> ProcessGroup:
        """Start `python args...` in the repository, its output on this terminal."""
        from app.processes.group import ProcessGroup

        say(f"starting {name}: python {' '.join(args)}")
        self.groups[name] = ProcessGroup(name, [sys.executable, *args], cwd=REPO_ROOT).start()
        return self.groups[name]

    def first_exited(self) -> str | None:
        """Return the name of a child that has exited, if any."""
        return next((name for name, group in self.groups.items() if not group.running), None)

    def wait(self, name: str) -> int | None:
        """Wait for one child to finish and forget it; None if a stop was requested first."""
        group = self.groups[name]
        while group.running:
            if self.stop_signal is not None:
                return None
            time.sleep(POLL_SECONDS)
        del self.groups[name]
        return group.returncode

    def stop_all(self) -> None:
        """Stop every child: SIGTERM, a second SIGTERM after the grace period, then SIGKILL."""
        from app.processes.group import wait_for_exit

        groups = list(self.groups.values())
        if not groups:
            return
        say(f"stopping {', '.join(self.groups)} ...")
        # SIGTERM to the leaders only: each stops its own children its own way (gunicorn lets its workers
        # finish their requests; worker.py's pool asks its workers to finish their jobs).
        for group in groups:
            group.signal(signal.SIGTERM, group=False)
        if not wait_for_exit(groups, STOP_TIMEOUT_SECONDS):
            # worker.py's pool passes a second SIGTERM on as a second SIGINT, on which its workers stop at
            # once and queue their unfinished jobs again (app/worker/pool.py).
            say(f"still running after {STOP_TIMEOUT_SECONDS:.0f} s: SIGTERM again, then SIGKILL")
            for group in groups:
                group.signal(signal.SIGTERM, group=False)
            wait_for_exit(groups, COLD_STOP_SECONDS)
        # SIGKILL to whole groups: every process the children started stays in their group (the
        # workers run jobs in threads, with no work horse of their own), so this leaves nothing behind.
        for group in groups:
            group.kill()
        self.groups.clear()


def print_summary(url: str, redis_description: str) -> None:
    """Say where the app is, who may use it and where its data lives, without printing secrets."""
    if os.environ.get("STABILITY_API_KEY"):
        provider = "Stability AI (STABILITY_API_KEY is set)"
    else:
        provider = (
            "demo - offline placeholder images. "
            "Put STABILITY_API_KEY=... in .env and restart to generate real images."
        )
    print(
        f"\n  Image Generator is running at {url}\n"
        f"  Sign-in:  {sign_in_description()}\n"
        f"  Provider: {provider}\n"
        f"  Database: {database_description()}\n"
        f"  Images:   {images_description()}\n"
        f"  Redis:    {redis_description}\n"
        "  `flask ...` in another terminal here uses this run (see instance/local-run.json).\n"
        "  Press Ctrl-C to stop.\n",
        flush=True,
    )


def auth_mode() -> str:
    """The sign-in mode the app runs with: AUTH_MODE, else none on one's own machine."""
    return (os.environ.get("AUTH_MODE") or "none").strip().lower()


def sign_in_description() -> str:
    """The sign-in mode, and what it means for whoever opens the URL."""
    if auth_mode() == "accounts":
        return ("accounts - everyone signs in (AUTH_MODE=accounts); make the first admin with "
                "`flask users create you@example.com --admin` in another terminal here")
    return "none - one local user, no password, this machine only (AUTH_MODE=none)"


def database_description() -> str:
    """The database, its password hidden."""
    database = os.environ.get("DATABASE_URL")
    return redact_url(database) if database else f"SQLite, {REPO_ROOT / 'instance' / 'app.db'}"


def images_description() -> str:
    """Where new images are stored: a folder on this machine, or a bucket."""
    if (os.environ.get("MEDIA_STORAGE") or "local").strip().lower() == "s3":
        endpoint = os.environ.get("S3_ENDPOINT_URL") or "AWS"
        return f"S3 bucket {os.environ.get('S3_BUCKET')} ({endpoint})"
    return os.environ.get("MEDIA_ROOT") or str(REPO_ROOT / "instance" / "media")


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
    from app.processes.group import tcp_accepts

    web_is_up = tcp_accepts(port)
    announced = False
    while children.stop_signal is None:
        if redis.server is not None and not redis.server.is_running:
            say(f"the embedded Redis exited unexpectedly (see {redis.server.log_file}); stopping everything")
            return 1
        exited = children.first_exited()
        if exited is not None:
            status = children.groups[exited].returncode
            say(f"the {exited} exited unexpectedly (status {status}); stopping everything")
            if exited == "web server":
                say(f"if port {port} is taken, set PORT to another port (e.g. PORT=5001)")
            return 1
        if not announced and web_is_up():
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
    # The same settings file as production (threads, metrics clean-up), bound to loopback only; for this
    # terminal one line per request (the path without its query) and only gunicorn's warnings, and no control
    # socket, which gunicorn would otherwise keep in ~/.gunicorn/ for every run on the machine to share.
    return ["-m", "gunicorn", "-c", "python:app.gunicorn_config", "--bind", f"127.0.0.1:{port}",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT, "--log-level", "warning",
            "--no-control-socket", "wsgi:app"]


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


def record_local_run(cleanup: contextlib.ExitStack, port: int, secret_from_shell: bool) -> None:
    """Write instance/local-run.json, so `flask ...` in another terminal uses this run; removed when it stops."""
    from app.processes import local_run

    settings = {"AUTH_MODE": auth_mode(), "PUBLIC_URL": f"http://127.0.0.1:{port}",
                **local_run.shared_settings(os.environ)}
    instance = REPO_ROOT / "instance"
    local_run.write_record(instance, local_run.LocalRun(os.getpid(), settings, secret_from_shell))
    cleanup.callback(local_run.remove_record, instance, os.getpid())


def main() -> int:
    """Start everything, wait, and stop everything that was started."""
    arguments = parse_arguments()
    bootstrap()
    # Before .env is read: a key from this shell is one the record cannot pass on (it holds no secret).
    secret_from_shell = bool(os.environ.get("SECRET_KEY"))
    port = prepare_environment()
    children = Children()
    for signum in STOP_SIGNALS:
        signal.signal(signum, children.request_stop)
    # Undone in reverse order: the app's processes, then Redis.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(say, "stopped")
        try:
            # Redis comes first so that the migrations see the same settings as the app.
            redis = use_redis(cleanup)
            record_local_run(cleanup, port, secret_from_shell)
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
