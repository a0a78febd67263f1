"""Comparison grids: up to three axes (X, Y, and Z: one grid per value), each over one option or a prompt
search/replace (AUTOMATIC1111's "Prompt S/R"), and the cells a batch makes of them."""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.providers.options import (
    ASPECT_RATIOS,
    CFG_SCALE_RANGE,
    MAX_PROMPT_LENGTH,
    MAX_SEED,
    MODELS,
    STYLE_PRESETS,
    GenerationOptions,
    model_label,
    style_label,
)
from app.text.storable import UNSAFE

AXES = ("x", "y", "z")
PROMPT_SR = "prompt_sr"
GRID_OPTIONS = ("model", "style_preset", "aspect_ratio", "seed", "cfg_scale", "negative_prompt", PROMPT_SR)
OPTION_LABELS = {"model": "Model", "style_preset": "Style", "aspect_ratio": "Aspect ratio", "seed": "Seed",
                 "cfg_scale": "CFG scale", "negative_prompt": "Negative prompt", PROMPT_SR: "Prompt S/R"}
MAX_AXIS_VALUES = 20
Value = str | int | float | None


class GridError(ValueError):
    """An axis that cannot be drawn; `field` is "x", "y" or "z" (or "grid")."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _plain(value: object) -> str:
    """An axis value as text (the form's values are text; the API's may be numbers or null)."""
    return "" if value is None else str(value).strip()


def _model(text: str) -> Value:
    if text not in MODELS:
        raise ValueError(f"{text!r} is not a model; use {', '.join(MODELS)}.")
    return text


def _style(text: str) -> Value:
    if text.lower() in ("", "none"):
        return None
    if text not in STYLE_PRESETS:
        raise ValueError(f"{text!r} is not a style preset; use none or {', '.join(STYLE_PRESETS)}.")
    return text


def _ratio(text: str) -> Value:
    if text not in ASPECT_RATIOS:
        raise ValueError(f"{text!r} is not an aspect ratio; use {', '.join(ASPECT_RATIOS)}.")
    return text


def _seed(text: str | int) -> Value:
    try:
        number = float(str(text))
        value = int(number) if number.is_integer() else -1
    except (ValueError, OverflowError):
        value = -1
    if not 1 <= value <= MAX_SEED:
        raise ValueError(f"{text!r} is not a seed; use whole numbers from 1 to {MAX_SEED:,}.")
    return value


def _cfg(text: str | float) -> Value:
    try:
        value = float(str(text))
    except ValueError:
        value = math.nan
    if not CFG_SCALE_RANGE[0] <= value <= CFG_SCALE_RANGE[1]:
        raise ValueError(f"{text!r} is not a CFG scale; use numbers from 1 to 10.")
    return value


def _text(text: str) -> Value:
    if len(text) > MAX_PROMPT_LENGTH or UNSAFE.search(text):
        raise ValueError("Each value must be at most 10,000 characters of printable text.")
    return text or None


PARSERS: dict[str, Callable[[Any], Value]] = {
    "model": _model, "style_preset": _style, "aspect_ratio": _ratio, "seed": _seed, "cfg_scale": _cfg,
    "negative_prompt": _text, PROMPT_SR: lambda text: _text(text) or "",
}


def split_values(text: str) -> list[str]:
    """Values as typed in the form: separated by commas, "quoted" where one holds a comma (as A1111 reads them)."""
    try:
        rows = list(csv.reader([" ".join(text.splitlines())], skipinitialspace=True))
    except csv.Error:  # a field past the csv module's limit: one value, which the length check then refuses
        return [text]
    return [value.strip() for value in rows[0]] if rows else []


def joined_values(values: Sequence[object]) -> str:
    """The inverse of split_values: the values as one line of the form."""
    lines: list[str] = []

    class _Line:
        def write(self, text: str) -> None:
            lines.append(text)

    csv.writer(_Line(), lineterminator="").writerow(["" if v is None else str(v) for v in values])
    return "".join(lines)


@dataclass(frozen=True)
class Axis:
    """One axis: the option it varies and its values, resolved (a style's "none" is None)."""

    option: str
    values: tuple[Value, ...]

    def label(self, index: int) -> str:
        """A value's name for people, as the row or column heading."""
        value = self.values[index]
        if self.option == "model":
            return model_label(str(value))
        if self.option == "style_preset":
            return style_label(value)  # type: ignore[arg-type]
        if value is None or value == "":
            return "(none)"
        return f"{value:g}" if isinstance(value, float) else str(value)

    @property
    def title(self) -> str:
        """The option's name for people."""
        return OPTION_LABELS[self.option]

    def as_json(self) -> dict[str, object]:
        """The axis as the API states it."""
        return {"option": self.option, "values": list(self.values)}


def parse_axis(name: str, option: str, values: Sequence[object]) -> Axis:
    """An axis from its option and raw values, or GridError naming the axis."""
    if option not in GRID_OPTIONS:
        raise GridError(name, f"Choose one of: {', '.join(GRID_OPTIONS)}.")
    if not values:
        raise GridError(name, "Give this axis at least one value.")
    if len(values) > MAX_AXIS_VALUES:
        raise GridError(name, f"{len(values)} values is more than the {MAX_AXIS_VALUES} an axis may hold.")
    try:
        resolved = tuple(PARSERS[option](_plain(value)) for value in values)
    except ValueError as exc:
        raise GridError(name, str(exc)) from None
    if option == PROMPT_SR and not resolved[0]:
        raise GridError(name, "The first value of Prompt S/R is the text to find in the prompt: it cannot be empty.")
    return Axis(option, resolved)


@dataclass(frozen=True)
class Grid:
    """The axes of a comparison grid (X always; Y and Z when given)."""

    axes: Mapping[str, Axis]

    def cells(self) -> list[dict[str, int]]:
        """Every cell, grid by grid (Z), row by row (Y), column by column (X)."""
        names = [name for name in reversed(AXES) if name in self.axes]
        ranges = [range(len(self.axes[name].values)) for name in names]
        return [dict(zip(names, indexes, strict=True)) for indexes in itertools.product(*ranges)]

    def size(self, name: str) -> int:
        """How many values an axis has (1 for an axis not given)."""
        return len(self.axes[name].values) if name in self.axes else 1

    def as_json(self) -> dict[str, object]:
        """The grid as the Batch stores it and the API states it."""
        return {name: axis.as_json() for name, axis in self.axes.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grid:
        """The grid a Batch stored."""
        return cls({name: Axis(data[name]["option"], tuple(data[name]["values"])) for name in AXES if name in data})

    def apply(self, cell: Mapping[str, int], prompt: str, options: GenerationOptions) -> tuple[str, GenerationOptions]:
        """The prompt and options of one cell."""
        changes: dict[str, Value] = {}
        for name, index in cell.items():
            axis = self.axes[name]
            value = axis.values[index]
            if axis.option == PROMPT_SR:
                prompt = prompt.replace(str(axis.values[0]), str(value))
            else:
                changes[axis.option] = value
        options = replace(options, **changes)
        if not MODELS[options.model].takes_cfg_scale and options.cfg_scale is not None:
            options = replace(options, cfg_scale=None)
        return prompt, options

    def check(self, prompt: str, options: GenerationOptions) -> None:
        """GridError when a cell could not differ as asked: S/R text missing, CFG on a model without it."""
        for name, axis in self.axes.items():
            if axis.option == PROMPT_SR and str(axis.values[0]) not in prompt:
                raise GridError(name, f"{axis.values[0]!r} (the first value) is not in the prompt, so nothing would "
                                      "be replaced.")
            if axis.option == "cfg_scale":
                models = self.axes_values("model") or (options.model,)
                if not all(MODELS[str(model)].takes_cfg_scale for model in models):
                    raise GridError(name, "CFG scale is an SD 3.5 option: choose SD 3.5 models for this grid.")

    def axes_values(self, option: str) -> tuple[Value, ...]:
        """The values of the axis over `option`, if there is one."""
        return next((axis.values for axis in self.axes.values() if axis.option == option), ())


def grid_from(raw: Mapping[str, tuple[str, Sequence[object]]]) -> Grid | None:
    """A grid from each axis's (option, values), axes without an option left out; None without X."""
    axes = {name: parse_axis(name, *raw[name]) for name in AXES if name in raw and raw[name][0]}
    if not axes:
        return None
    if "x" not in axes:
        raise GridError(next(iter(axes)), "Start with the X axis; Y and Z are optional.")
    if "z" in axes and "y" not in axes:
        raise GridError("z", "Give a Y axis before a Z axis.")
    options = [axis.option for axis in axes.values()]
    if len(set(options)) < len(options):
        raise GridError(list(axes)[-1], "Each axis must vary a different option.")
    return Grid(axes)


@dataclass(frozen=True)
class GridTable:
    """One grid to draw (one per Z value): its title, column and row headings, and each cell's item by row."""

    title: str | None
    columns: list[str]
    rows: list[tuple[str | None, list[Any]]]


def tables(grid: Grid, items: Sequence[Any], cell_of: Callable[[Any], Mapping[str, int] | None]) -> list[GridTable]:
    """The grid's tables with each item (a generation) in its cell; a cell whose item is gone holds None."""
    placed = {tuple((cell_of(item) or {}).get(axis, 0) for axis in AXES): item for item in items}
    x, y, z = (grid.axes.get(axis) for axis in AXES)
    columns = [x.label(i) for i in range(grid.size("x"))] if x else [""]
    found = []
    for k in range(grid.size("z")):
        title = f"{z.title}: {z.label(k)}" if z else None
        rows = [(y.label(j) if y else None, [placed.get((i, j, k)) for i in range(grid.size("x"))])
                for j in range(grid.size("y"))]
        found.append(GridTable(title, columns, rows))
    return found


def cell_label(generation: Any) -> str:  # noqa: ANN401
    """Where a generation sits in its batch's grid, for people ("Model: SD 3.5 Flash · Style: Anime"); empty
    outside a grid."""
    cell, stored = getattr(generation, "cell", None), getattr(generation.batch, "grid", None)
    if not cell or not stored:
        return ""
    grid = Grid.from_json(stored)
    return " · ".join(f"{grid.axes[axis].title}: {grid.axes[axis].label(index)}" for axis, index in
                      sorted(cell.items()) if axis in grid.axes and index < grid.size(axis))
