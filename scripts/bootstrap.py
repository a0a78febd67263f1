"""Make sure the project virtualenv exists and is up to date, then run the caller inside it."""

# Standard library only: this runs before anything from requirements.txt is installed.
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

MIN_PYTHON = (3, 11)
REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / ".venv"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
# Kept inside the venv so a deleted or recreated venv always reinstalls.
REQUIREMENTS_STAMP = VENV_DIR / ".requirements.sha256"


def venv_python() -> Path:
    """Return the path of the virtualenv's python executable."""
    if os.name == "nt":
        return VENV_DIR / "Scripts" / "python.exe"
    return VENV_DIR / "bin" / "python"


def running_in_venv() -> bool:
    """Tell whether this interpreter is the project virtualenv's."""
    return Path(sys.prefix).resolve() == VENV_DIR.resolve()


def ensure_venv() -> None:
    """Create the virtualenv with pip if it does not exist yet."""
    if venv_python().exists():
        return
    print(f"Creating a virtualenv in {VENV_DIR} ...", flush=True)
    try:
        venv.EnvBuilder(with_pip=True).create(VENV_DIR)
    except (OSError, subprocess.CalledProcessError) as error:
        # A venv without pip would be skipped next time, so do not leave one behind.
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        sys.exit(
            f"Could not create {VENV_DIR}: {error}\n"
            "On Debian/Ubuntu install the venv module first: sudo apt-get install python3-venv"
        )


def ensure_requirements() -> None:
    """Install requirements.txt into the virtualenv unless it is unchanged since the last install."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if REQUIREMENTS_STAMP.exists() and REQUIREMENTS_STAMP.read_text().strip() == digest:
        return
    print(f"Installing {REQUIREMENTS.name} into {VENV_DIR} ...", flush=True)
    command = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check"]
    result = subprocess.run([*command, "--requirement", str(REQUIREMENTS)], check=False)
    if result.returncode != 0:
        sys.exit(f"pip could not install {REQUIREMENTS} (exit status {result.returncode})")
    # Written only after a successful install, so a failed one is retried next run.
    REQUIREMENTS_STAMP.write_text(digest + "\n")


def bootstrap() -> None:
    """Prepare the virtualenv and re-execute the calling script with its python if needed."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed, this is {sys.version}")
    ensure_venv()
    ensure_requirements()
    if not running_in_venv():
        python = str(venv_python())
        script = os.path.abspath(sys.argv[0])
        os.execv(python, [python, script, *sys.argv[1:]])
