"""The record of a running scripts/run.py (app/processes/local_run.py), and what `flask …` beside it makes of it."""

import stat
import subprocess
import sys

import pytest

from app import create_app
from app.config import Config, ConfigError
from app.processes.local_run import (
    LocalRun,
    LocalRunError,
    join_local_run,
    read_record,
    record_path,
    remove_record,
    write_record,
)

SETTINGS = {"REDIS_URL": "unix:///somewhere/redis.sock", "AUTH_MODE": "accounts", "PUBLIC_URL": "http://127.0.0.1:5123"}


@pytest.fixture
def run_script():
    """A live process whose command line names run.py, as scripts/run.py's does."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "run.py"])
    yield process.pid
    process.kill()
    process.wait()


def test_a_command_beside_the_run_takes_what_its_environment_leaves_unset(tmp_path, run_script):
    path = write_record(tmp_path, LocalRun(run_script, SETTINGS))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a DATABASE_URL may carry a password
    environ = {"AUTH_MODE": "none", "REDIS_URL": ""}
    assert join_local_run(tmp_path, environ)
    assert environ == {**SETTINGS, "AUTH_MODE": "none", "IMAGE_GENERATOR_LOCAL": "1"}


def test_a_record_whose_run_script_died_is_ignored(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())", "run.py"],
                              capture_output=True, text=True, check=True)
    write_record(tmp_path, LocalRun(int(finished.stdout), SETTINGS))
    environ: dict[str, str] = {}
    assert not join_local_run(tmp_path, environ) and environ == {}


def test_a_pid_reused_by_another_program_is_not_the_run(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_record(tmp_path, LocalRun(other.pid, SETTINGS))
        assert read_record(tmp_path) is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_image_generator_local_0_ignores_the_record(tmp_path, run_script, value):
    write_record(tmp_path, LocalRun(run_script, SETTINGS))
    environ = {"IMAGE_GENERATOR_LOCAL": value}
    assert not join_local_run(tmp_path, environ) and environ == {"IMAGE_GENERATOR_LOCAL": value}


def test_a_secret_only_in_the_runs_own_shell_must_be_given_again(tmp_path, run_script):
    write_record(tmp_path, LocalRun(run_script, SETTINGS, secret_from_environment=True))
    with pytest.raises(LocalRunError, match="set the same SECRET_KEY here"):
        join_local_run(tmp_path, {})
    assert join_local_run(tmp_path, {"SECRET_KEY": "the same"})


@pytest.mark.parametrize("text", ["", "{", "[]", '{"pid": "x", "settings": {}}'])
def test_a_broken_record_is_no_run(tmp_path, text):
    record_path(tmp_path).write_text(text)
    assert read_record(tmp_path, check_alive=False) is None


def test_the_run_removes_only_its_own_record(tmp_path, run_script):
    write_record(tmp_path, LocalRun(run_script, SETTINGS))
    remove_record(tmp_path, run_script + 1)
    assert record_path(tmp_path).exists()
    remove_record(tmp_path, run_script)
    assert not record_path(tmp_path).exists()


@pytest.fixture
def plain_environment(monkeypatch):
    for name in ("SECRET_KEY", "IMAGE_GENERATOR_LOCAL", "FLASK_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def test_without_a_secret_key_a_folder_run_py_used_names_image_generator_local(tmp_path, plain_environment):
    with pytest.raises(ConfigError) as plain:
        create_app(Config(str(tmp_path)))
    assert "IMAGE_GENERATOR_LOCAL" not in str(plain.value)  # a deployment is never told to act as a local run
    (tmp_path / "secret_key").write_text("0" * 64)
    with pytest.raises(ConfigError, match="start it and run this beside it, or set IMAGE_GENERATOR_LOCAL=1"):
        create_app(Config(str(tmp_path)))
