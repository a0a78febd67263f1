"""The shape of app/: imports point down the layers .importlinter names, and nothing imports back."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes  # lint-imports runs as a command of its own
ROOT = Path(__file__).resolve().parent.parent


def test_imports_point_down_the_layers_and_no_two_modules_import_each_other():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout
