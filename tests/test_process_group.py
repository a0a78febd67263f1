"""app.processes: a whole group stops, a dead or hung child fails the wait with its log, Redis keeps its data."""

import os
import sys
import time

import pytest
from redis import Redis

from app.processes.group import NotReady, ProcessGroup, free_port
from app.processes.redis_server import EmbeddedRedis

pytestmark = pytest.mark.processes


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_stop_reaches_the_childs_own_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    with ProcessGroup("parent", python(code), log=tmp_path / "parent.log") as group:
        group.wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", "the grandchild", timeout=20)
        grandchild = int(pid_file.read_text())
        assert alive(grandchild)
    assert group.returncode is not None
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_a_child_that_exits_fails_the_wait_with_the_end_of_its_log(tmp_path):
    with ProcessGroup("crasher", python("print('no such setting'); raise SystemExit(3)"),
                      log=tmp_path / "crasher.log") as group:
        with pytest.raises(NotReady) as failure:
            group.wait_until(lambda: False, "readiness", timeout=20)
    assert failure.value.exited
    assert "crasher exited with status 3 while waiting for readiness" in str(failure.value)
    assert "no such setting" in str(failure.value)


def test_a_child_that_never_gets_ready_times_out_and_one_ignoring_sigterm_is_killed(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    group = ProcessGroup("stubborn", python(code), log=tmp_path / "stubborn.log").start()
    group.wait_until(lambda: "up" in group.log_tail(), "its first line", timeout=20)
    with pytest.raises(NotReady) as failure:
        group.wait_until(lambda: False, "an answer", timeout=0.3)
    assert not failure.value.exited and "timed out after 0 s waiting for an answer" in str(failure.value)
    started = time.monotonic()
    group.stop(grace=0.5)
    assert group.returncode == -9 and time.monotonic() - started < 5


def test_the_embedded_redis_keeps_its_data_across_a_restart_unless_told_not_to(tmp_path):
    with EmbeddedRedis(tmp_path / "kept") as server:
        Redis.from_url(server.url).set("queued", "job")
    with EmbeddedRedis(tmp_path / "kept") as server:
        assert Redis.from_url(server.url).get("queued") == b"job"
    server = EmbeddedRedis(tmp_path / "empty", port=free_port(), keep_data=False)
    with server:
        Redis.from_url(server.url).set("queued", "job")
    with server:
        assert Redis.from_url(server.url).get("queued") is None


def test_the_embedded_redis_is_not_fooled_by_another_server_on_its_port(tmp_path):
    port = free_port()
    with EmbeddedRedis(tmp_path / "first", port=port), pytest.raises(NotReady, match="Address already in use"):
        EmbeddedRedis(tmp_path / "second", port=port).start()
