"""A child process leading a process group of its own: started, waited on until ready, stopped as a whole."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.client import HTTPException
from pathlib import Path
from types import TracebackType
from typing import Self

STOP_GRACE_SECONDS = 15.0
READY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1
TAIL_LINES = 30
_PR_SET_PDEATHSIG = 1
# Loaded here, in the parent: loading a library between fork and exec can deadlock.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

Probe = Callable[[], bool]


class NotReady(RuntimeError):
    """A child exited, or did not become ready in time; the message ends with the tail of its log."""

    def __init__(self, message: str, *, exited: bool) -> None:
        """Keep whether the child exited (a retry may help) or is still running (it hung)."""
        super().__init__(message)
        self.exited = exited


def exit_with_parent() -> None:
    """Ask Linux to SIGTERM the calling process when its parent thread dies (a preexec_fn)."""
    # Without this, a parent killed with SIGKILL would leave its children running.
    if _LIBC is None:
        return
    parent = os.getppid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class ProcessGroup:
    """One command in a new session and process group; stopping it reaches everything it started."""

    def __init__(self, name: str, command: Sequence[str | os.PathLike[str]], *,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 log: Path | None = None, append: bool = False) -> None:
        """Prepare (not start) the command; its output goes to log (appended to, if asked), else to ours."""
        self.name = name
        self.command = [os.fspath(part) for part in command]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log = log
        self.append = append
        self.process: subprocess.Popen[bytes] | None = None
        self._swept = False

    @property
    def pid(self) -> int:
        """The leader's pid, which is also the group's id."""
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The leader's exit status once it has exited (reaping it), else None."""
        return self.process.poll() if self.process is not None else None

    @property
    def running(self) -> bool:
        """Whether the leader was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start the command in a session of its own; a second start after a stop runs it again."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with contextlib.ExitStack() as files:
            output = files.enter_context(self.log.open("ab" if self.append else "wb")) if self.log else None
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT if output else None,
                # Own session and group: the terminal's Ctrl-C reaches only the parent, which stops its
                # children in order, and killpg reaches the child's own children too.
                start_new_session=True,
                # Only calls prctl between fork and exec, which is safe with threads.
                preexec_fn=exit_with_parent,  # noqa: PLW1509
            )
        self._swept = False
        return self

    def wait_until(self, ready: Probe, what: str, timeout: float = READY_TIMEOUT_SECONDS,
                   interval: float = POLL_SECONDS) -> float:
        """Poll ready() until true and return the seconds it took; NotReady if this child exits or time runs out."""
        return wait_until(ready, what, watch=[self], timeout=timeout, interval=interval)

    def signal(self, signum: int, *, group: bool = True) -> None:
        """Send signum to every process in the group, or with group=False to the leader alone."""
        if self.process is None:
            return
        if not group:
            self.process.send_signal(signum)  # nothing once the leader has been reaped
            return
        with contextlib.suppress(ProcessLookupError):  # the whole group has already gone
            os.killpg(self.process.pid, signum)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the group, wait up to grace for the leader to exit, then SIGKILL what is left; safe to repeat."""
        stop_all([self], grace)

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash would, and reap the leader."""
        if self.process is None or self._swept:
            return
        # Sent even after the leader exited, since one of its children may have outlived it; but only once,
        # as the leader's pid (the group's id) is free for reuse once no process of the group is left.
        self.signal(signal.SIGKILL)
        self.process.wait()
        self._swept = True

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of the log, for error messages."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        """Start the command (unless start() already did) for the duration of a with block."""
        return self.start() if self.process is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Stop the group when the with block ends."""
        self.stop()


def wait_until(ready: Probe, what: str, *, watch: Iterable[ProcessGroup] = (),
               timeout: float = READY_TIMEOUT_SECONDS, interval: float = POLL_SECONDS) -> float:
    """Poll ready() until true and return the seconds it took; NotReady if a watched child exits or time runs out."""
    watched = list(watch)
    started = time.monotonic()
    while True:
        for group in watched:
            if group.returncode is not None:
                raise NotReady(_explained(f"{group.name} exited with status {group.returncode} while waiting for "
                                          f"{what}", [group]), exited=True)
        if ready():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise NotReady(_explained(f"timed out after {timeout:.0f} s waiting for {what}", watched), exited=False)
        time.sleep(interval)


def wait_for_exit(groups: Iterable[ProcessGroup], timeout: float) -> bool:
    """Wait until every group's leader has exited (reaping it); False if one is still running at the timeout."""
    pending = list(groups)
    deadline = time.monotonic() + timeout
    while any(group.running for group in pending):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_all(groups: Iterable[ProcessGroup], grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop several groups together: SIGTERM to each, one shared grace period, then SIGKILL to each."""
    started = [group for group in groups if group.process is not None]
    for group in started:
        if group.running:
            group.signal(signal.SIGTERM)
    wait_for_exit(started, grace)
    for group in started:
        group.kill()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tcp_accepts(port: int, host: str = "127.0.0.1") -> Probe:
    """A probe: whether something accepts TCP connections on host:port."""
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return probe


def http_ok(url: str) -> Probe:
    """A probe: whether GET url answers 200."""
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (OSError, HTTPException):  # refused, reset, an error status (HTTPError), a garbled answer
            return False
    return probe


def _explained(message: str, groups: Iterable[ProcessGroup]) -> str:
    """The message followed by the end of each group's log."""
    for group in groups:
        tail = group.log_tail()
        if tail:
            message += f"\n--- the end of {group.log}:\n{tail}"
    return message
