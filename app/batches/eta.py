"""How long a running image has left: the median running time of its model's last finished images here.

Read at most once per model every 30 s per process (one indexed query, only when a running card is rendered:
an unchanged poll renders nothing). Until a model has a finished image there is nothing to show, and that is
read again after 2 s, not for each running card of a page.
"""

from __future__ import annotations

import statistics
import threading
import time

import sqlalchemy as sa
from flask import current_app

from app.batches.progress import elapsed_seconds
from app.extensions import db
from app.models import Generation, Status

SAMPLE_SIZE = 20
CACHE_SECONDS = 30.0
# A model's first success should show within a poll or two, not 30 s later.
NOTHING_YET_SECONDS = 2.0
_EXTENSION = "model_latency"


class LatencyCache:
    """Each model's typical running time in seconds (None: no finished image yet), with when to read it again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[float, float | None]] = {}

    def get(self, model: str) -> float | None:
        """The cached estimate, read afresh once it is older than CACHE_SECONDS."""
        now = time.monotonic()
        with self.lock:
            entry = self.entries.get(model)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = recent_median_seconds(model)
        with self.lock:
            self.entries[model] = (now + (NOTHING_YET_SECONDS if value is None else CACHE_SECONDS), value)
        return value


def recent_median_seconds(model: str) -> float | None:
    """The median running time (start to stored image) of the model's last SAMPLE_SIZE successes."""
    rows = db.session.execute(
        sa.select(Generation.started_at, Generation.finished_at)
        .where(Generation.model == model, Generation.status == Status.SUCCEEDED,
               Generation.finished_at.is_not(None), Generation.started_at.is_not(None))
        .order_by(Generation.finished_at.desc()).limit(SAMPLE_SIZE)
    ).all()
    durations = [(finished - started).total_seconds() for started, finished in rows]
    return statistics.median(durations) if durations else None


def typical_seconds(model: str) -> float | None:
    """This app's cached estimate for the model."""
    cache = current_app.extensions.get(_EXTENSION)
    if cache is None:
        cache = current_app.extensions.setdefault(_EXTENSION, LatencyCache())
    return cache.get(model)


def seconds_left(generation: Generation) -> int | None:
    """Seconds a running generation likely still needs (0: overdue, almost done); None with nothing to go by."""
    typical = typical_seconds(generation.model)
    if typical is None:
        return None
    return max(0, round(typical - elapsed_seconds(generation)))
