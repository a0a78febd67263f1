"""What the JSON nesting check costs next to parsing the same body, from a typical batch to 1 MiB of brackets.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/json_depth.py [--repeat 30]

For each body it times app.web.json_bodies.nested_deeper_than (the check every JSON request passes before
webargs parses it) and json.loads of the same bytes (until it returns or gives up), and prints the medians and
their ratio. The ideal is a check that costs nothing next to the parse it protects: ratio 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.web.json_bodies import nested_deeper_than  # noqa: E402  (needs the path above)

MIB = 1024 * 1024
LIMIT = 32


def bodies() -> dict[str, bytes]:
    """Bodies a client might send, each at most the 1 MiB the app accepts."""
    prompt = "a lighthouse at dawn, [volumetric light], {35 mm}, \"quoted\" " * 10
    return {
        "a batch of 10 prompts": json.dumps({"prompts": ["a lighthouse at dawn"] * 10, "model": "core"}).encode(),
        "1 MiB of prompts with brackets": json.dumps({"prompts": [prompt] * (MIB // (len(prompt) + 4))}).encode(),
        "1 MiB of [] pairs (depth 1)": b"[" + b"[]," * (MIB // 3 - 1) + b"[]]",
        "1 MiB of [ (never closed)": b"[" * MIB,
        "1,000 deep": b"[" * 1000 + b"]" * 1000,
    }


def median_ms(action: Callable[[], object], repeat: int) -> float:
    """The median wall time of action in milliseconds (an exception ends a run like a return)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            action()
        except (RecursionError, ValueError):
            pass
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print one row per body."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    repeat = parser.parse_args().repeat
    print("| body | bytes | check ms | json.loads ms | check ÷ parse |")
    print("|---|---:|---:|---:|---:|")
    for name, body in bodies().items():
        check = median_ms(lambda body=body: nested_deeper_than(body, LIMIT), repeat)
        parse = median_ms(lambda body=body: json.loads(body), repeat)
        print(f"| {name} | {len(body):,} | {check:.3f} | {parse:.3f} | {check / parse:.2f} |")


if __name__ == "__main__":
    main()
