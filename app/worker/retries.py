"""The one retry loop: call again after a failure worth retrying, waiting exponentially longer each time."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def backoff_delay(attempt: int, base: float, cap: float = math.inf, jitter: bool = True) -> float:
    """The wait after attempt 1, 2, 3…: base, 2·base, 4·base… up to cap; with jitter a random part of it.

    Full jitter (a uniform draw up to the exponential bound) keeps workers that failed together from retrying
    together.
    """
    bound = min(cap, base * 2 ** (attempt - 1))
    return random.uniform(0, bound) if jitter else bound


def retry(call: Callable[[int], T], *, attempts: Iterable[int] | None, retry_if: Callable[[Exception], bool],
          base: float, cap: float = math.inf, jitter: bool = True,
          before_wait: Callable[[int, Exception, float], None] | None = None) -> T:
    """Return call(attempt) for the first attempt that succeeds; the last attempt's failure is raised.

    A failure that `retry_if` refuses is raised at once. Before each wait, `before_wait(attempt, error, delay)`
    is told (to log it, or to raise and give up). `attempts` None: try until it succeeds.
    """
    numbers = list(attempts) if attempts is not None else None
    for attempt in numbers if numbers is not None else itertools.count(1):
        try:
            return call(attempt)
        except Exception as exc:
            if not retry_if(exc) or (numbers is not None and attempt >= numbers[-1]):
                raise
            delay = backoff_delay(attempt, base, cap, jitter)
            if before_wait is not None:
                before_wait(attempt, exc, delay)
            time.sleep(delay)
    raise ValueError("no attempts to make")
