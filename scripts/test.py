#!/usr/bin/env python3
"""Lint with ruff, then run the test suite: python3 scripts/test.py [pytest arguments]."""

from __future__ import annotations

import os
import subprocess
import sys

from bootstrap import REPO_ROOT, bootstrap


def main() -> int:
    """Run ruff; if it is clean, become pytest, otherwise return ruff's status."""
    bootstrap()
    os.chdir(REPO_ROOT)
    print("+ ruff check .", flush=True)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], check=False)
    if lint.returncode != 0:
        print("ruff found problems (see above); not running the tests", file=sys.stderr)
        return lint.returncode
    pytest = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    print(f"+ python -m pytest {' '.join(sys.argv[1:])}".rstrip(), flush=True)
    # exec rather than a child: Ctrl-C reaches pytest alone, so its fixtures still
    # clean up (dropping a throwaway database), and its status becomes ours.
    os.execv(sys.executable, pytest)


if __name__ == "__main__":
    sys.exit(main())
