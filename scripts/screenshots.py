#!/usr/bin/env python3
"""Refresh the README's screenshots (docs/screenshots/) by running all browser tests: python3 scripts/screenshots.py."""

from __future__ import annotations

import os
import sys

from bootstrap import REPO_ROOT, bootstrap

SCREENSHOTS_DIR = REPO_ROOT / "docs" / "screenshots"


def main() -> None:
    """Become pytest on the browser tests with SCREENSHOTS_DIR set; extra arguments go to pytest."""
    bootstrap()
    os.chdir(REPO_ROOT)
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    # Only here: a plain test run never writes to tracked files.
    os.environ["SCREENSHOTS_DIR"] = str(SCREENSHOTS_DIR)
    # A skipped module would leave the old pictures in place without a word.
    os.environ["E2E_REQUIRED"] = "1"
    pytest = [sys.executable, "-m", "pytest", "-q", "-m", "e2e", *sys.argv[1:]]
    print(f"+ SCREENSHOTS_DIR={SCREENSHOTS_DIR} {' '.join(pytest[1:])}", flush=True)
    # exec, as scripts/test.py does: Ctrl-C reaches pytest alone, so its fixtures still clean up.
    os.execv(sys.executable, pytest)


if __name__ == "__main__":
    main()
