"""A stacked bar chart of credits per day as plain SVG geometry, drawn by templates/usage/_chart.html (no script,
no inline style: each series is a CSS class)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from app.usage.totals import UsageRow

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 12, 28
SERIES = 8  # colours in static/css/usage.css; the smallest spenders beyond the seventh share the last one
OTHERS = "others"
MAX_X_LABELS = 10


@dataclass(frozen=True)
class Segment:
    """One rectangle: a series' credits on one day."""

    x: float
    y: float
    width: float
    height: float
    series: int
    label: str


@dataclass(frozen=True)
class Tick:
    """An axis label at a position."""

    at: float
    text: str


@dataclass(frozen=True)
class Chart:
    """What the template draws."""

    title: str
    segments: list[Segment]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[int, str, float]]  # (series, name, credits)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def plot_left(self) -> int:
        """Where the bars start (the y axis)."""
        return LEFT

    @property
    def plot_bottom(self) -> int:
        """The baseline's y."""
        return HEIGHT - BOTTOM


def _nice_max(value: float) -> float:
    """A round number at or above value, for the top of the y axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)


def _series_names(rows: list[UsageRow], key: str) -> dict[str, str]:
    """Each user or model's name in the legend: the seven biggest by name, the rest as 'others'."""
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[getattr(row, key)] += row.credits
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    keep = ranked if len(ranked) <= SERIES else ranked[:SERIES - 1]
    return {name: (name if name in keep else OTHERS) for name in ranked}


def stacked_by(rows: list[UsageRow], days: list[date], key: str, title: str) -> Chart:
    """Credits charged per day, one stack per day, a segment per user or model ('user' or 'model')."""
    names = _series_names(rows, key)
    order = list(dict.fromkeys(names.values()))
    per_day: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        per_day[row.day][names[getattr(row, key)]] += row.credits
    top = _nice_max(max((sum(v.values()) for v in per_day.values()), default=0.0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_width / max(1, len(days))
    bar = max(1.0, band * 0.7)
    segments = []
    for index, day in enumerate(days):
        base = float(HEIGHT - BOTTOM)
        for series, name in enumerate(order):
            credits = per_day.get(day, {}).get(name, 0.0)
            if credits <= 0:
                continue
            height = credits / top * plot_height
            base -= height
            segments.append(Segment(round(LEFT + index * band + (band - bar) / 2, 2), round(base, 2),
                                    round(bar, 2), round(height, 2), series,
                                    f"{day.isoformat()} · {name}: {credits:g} credits"))
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    x_ticks = [Tick(round(LEFT + i * band + band / 2, 2), day.strftime("%d %b")) for i, day in enumerate(days)
               if i % every == 0]
    y_ticks = [Tick(round(HEIGHT - BOTTOM - plot_height * n / 4, 2), f"{top * n / 4:g}") for n in range(5)]
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[names[getattr(row, key)]] += row.credits
    legend = [(series, name, totals[name]) for series, name in enumerate(order)]
    return Chart(title, segments, x_ticks, y_ticks, legend)
