"""The record of a running `scripts/run.py` (instance/local-run.json), so `flask …` beside it uses the same install.

scripts/run.py writes it once its Redis is up and removes it when it stops. The entry points (wsgi.py, which the
`flask` command loads, and worker.py) join the run it describes the way python-dotenv reads .env: each setting
it holds fills in only what the environment leaves unset, and IMAGE_GENERATOR_LOCAL=1 marks the process as part
of the local run, so it may use the install's own secret key (instance/secret_key). A record whose run.py has
died is ignored; IMAGE_GENERATOR_LOCAL=0 ignores any record.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

RECORD_NAME = "local-run.json"
# What says where the data lives and by which rules batches are made: a command beside the run must agree.
# Never the API key: a command beside the run needs none, and the record is a file on disk.
SHARED_SETTINGS = ("DATABASE_URL", "REDIS_URL", "AUTH_MODE", "PUBLIC_URL", "MEDIA_STORAGE", "MEDIA_ROOT",
                   "S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION", "S3_PREFIX", "MAX_PROMPTS_PER_BATCH",
                   "MAX_IMAGES_PER_BATCH", "DEFAULT_MONTHLY_CREDITS", "MONTHLY_CREDIT_LIMIT")
NOT_LOCAL = ("0", "false", "no", "off")


class LocalRunError(RuntimeError):
    """The local run cannot be joined; the message names what to set."""


@dataclass(frozen=True)
class LocalRun:
    """What a running scripts/run.py started, as its record says."""

    pid: int
    settings: dict[str, str]
    # SECRET_KEY came from run.py's own environment, which no other terminal sees (a .env is read by both).
    secret_from_environment: bool = False


def record_path(instance_path: str | os.PathLike[str]) -> Path:
    """Where the record of the local run of this instance folder lives."""
    return Path(instance_path) / RECORD_NAME


def shared_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The SHARED_SETTINGS that are set in environ."""
    return {name: environ[name] for name in SHARED_SETTINGS if environ.get(name)}


def write_record(instance_path: str | os.PathLike[str], run: LocalRun) -> Path:
    """Write the record whole (readable by this user only: a database URL may hold a password)."""
    path = record_path(instance_path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".local-run-")  # mode 0600
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": run.pid, "settings": run.settings,
                   "secret_from_environment": run.secret_from_environment}, handle, indent=2)
    os.replace(temporary, path)
    return path


def remove_record(instance_path: str | os.PathLike[str], pid: int) -> None:
    """Remove the record if it is still the one process pid wrote."""
    run = read_record(instance_path, check_alive=False)
    if run is not None and run.pid == pid:
        record_path(instance_path).unlink(missing_ok=True)


def read_record(instance_path: str | os.PathLike[str], check_alive: bool = True) -> LocalRun | None:
    """The local run this folder's record describes; None without one, or when its run.py is gone."""
    try:
        data = json.loads(record_path(instance_path).read_text())
        run = LocalRun(int(data["pid"]), {str(k): str(v) for k, v in dict(data["settings"]).items()},
                       bool(data.get("secret_from_environment")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, half a file, or not ours to read
    return run if not check_alive or _is_run_script(run.pid) else None


def _is_run_script(pid: int) -> bool:
    """Whether pid is a live scripts/run.py (not a process that got its number after it died)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        return b"run.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return True  # no /proc to ask: alive is all we can tell


def join_local_run(instance_path: str | os.PathLike[str], environ: MutableMapping[str, str] = os.environ) -> bool:
    """Fill in the environment's unset settings from this folder's running local run; True if there is one."""
    if environ.get("IMAGE_GENERATOR_LOCAL", "").strip().lower() in NOT_LOCAL:
        return False
    run = read_record(instance_path)
    if run is None:
        return False
    if run.secret_from_environment and not environ.get("SECRET_KEY"):
        raise LocalRunError("scripts/run.py runs in this folder with a SECRET_KEY set in its own environment: "
                            "set the same SECRET_KEY here (or put it in .env, which both read)")
    environ["IMAGE_GENERATOR_LOCAL"] = "1"
    for name, value in run.settings.items():
        if not environ.get(name):
            environ[name] = value
    return True
