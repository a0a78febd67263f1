"""What a batch will make, image by image: its templates expanded, its grid's cells, and the price of each; the
preview shows exactly this plan, and create_batch reserves exactly its credits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from app.generations.lifecycle import price_of
from app.generations.seeds import nth_seed, random_seed
from app.providers.options import MAX_PROMPT_LENGTH, MODELS, GenerationOptions
from app.variations.grids import Grid, GridError
from app.variations.templates import COUNT_LIMIT, TemplateError, expand, picks_seed

PREVIEW_PROMPTS = 5


class PlanRefused(ValueError):
    """The batch cannot be made as asked; `fields` maps "prompts", "samples", "x", "y", "z"… to the message."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__("; ".join(fields.values()))


@dataclass(frozen=True)
class PlannedImage:
    """One image of the batch: its prompt, options and place in the grid."""

    prompt: str
    options: GenerationOptions
    cell: dict[str, int] | None = None


@dataclass(frozen=True)
class Plan:
    """Every image a batch will make, in position order."""

    prompts: list[str]
    images: list[PlannedImage]
    images_per_prompt: int
    grid: Grid | None = None

    @property
    def credits(self) -> float:
        """What the batch reserves: the sum of each image's price."""
        return sum(price_of(image.options) for image in self.images)

    @property
    def prices(self) -> list[tuple[int, float, str]]:
        """(images, credits each, model's name) for each price in the batch, most images first."""
        counts = Counter((price_of(image.options), image.options.model) for image in self.images)
        return [(count, credits, MODELS[model].label) for (credits, model), count in counts.most_common()]

    @property
    def distinct_prompts(self) -> list[str]:
        """Every prompt the images are made of, once each, in order (a Prompt S/R grid's cells differ)."""
        return list(dict.fromkeys(image.prompt for image in self.images))

    @property
    def shown_prompts(self) -> list[str]:
        """The first few prompts, for the preview."""
        return self.distinct_prompts[:PREVIEW_PROMPTS]

    def as_rows(self) -> list[tuple[str, GenerationOptions, dict[str, int] | None]]:
        """The images as create_batch takes them."""
        return [(image.prompt, image.options, image.cell) for image in self.images]


def _expanded(texts: Sequence[str], mode: str, samples: int, seed: int | None,
              lists: Mapping[str, list[str]]) -> list[str]:
    """Every template's prompts in turn; random picks of row n seeded with seed + n."""
    base = picks_seed(seed) if mode == "random" else 0
    prompts: list[str] = []
    try:
        for row, text in enumerate(texts):
            prompts += expand(text, mode, lists, samples=samples, seed=base + row, limit=COUNT_LIMIT - len(prompts))
            if len(prompts) > COUNT_LIMIT:
                break
    except TemplateError as exc:
        raise PlanRefused({"prompts": str(exc)}) from None
    too_long = next((p for p in prompts if len(p) > MAX_PROMPT_LENGTH), None)
    if too_long is not None:
        raise PlanRefused({"prompts": f"A prompt this template makes is {len(too_long):,} characters long; the limit "
                                      f"is {MAX_PROMPT_LENGTH:,}."})
    return prompts


def _count(count: int) -> str:
    return f"more than {COUNT_LIMIT:,}" if count > COUNT_LIMIT else f"{count:,}"


def plan_batch(texts: Sequence[str], options: GenerationOptions, images_per_prompt: int = 1, expand_mode: str = "none",
               samples: int = 1, grid: Grid | None = None, lists: Mapping[str, list[str]] | None = None,
               max_images: int = 100) -> Plan:
    """The batch's images, or PlanRefused (past max_images: with the count, before anything is made)."""
    prompts = _expanded(texts, expand_mode, samples, options.seed, lists or {})
    cells = grid.cells() if grid else [None]
    count = len(prompts) * images_per_prompt * len(cells)
    if count > max_images:
        made = f"{_count(len(prompts))} prompts × {images_per_prompt} images" + (
            f" × {len(cells)} grid cells" if grid else "")
        raise PlanRefused({"prompts": f"This batch would make {_count(count)} images ({made}); one batch may make "
                                      f"at most {max_images} (MAX_IMAGES_PER_BATCH)."})
    if grid is None:
        return Plan(prompts, [PlannedImage(text, replace(options, seed=nth_seed(options.seed, n)))
                              for text in prompts for n in range(images_per_prompt)], images_per_prompt)
    if len(prompts) > 1 or images_per_prompt > 1:
        raise PlanRefused({"prompts": f"A grid compares the images of one prompt, one image each; this batch has "
                                      f"{_count(len(prompts))} prompts × {images_per_prompt} images. Leave one."})
    return Plan(prompts, _grid_images(prompts[0], options, grid), images_per_prompt, grid)


def _grid_images(text: str, options: GenerationOptions, grid: Grid) -> list[PlannedImage]:
    """The prompt's cells; without a locked seed (or a seed axis) every cell shares one seed, so cells differ only
    by their axes."""
    try:
        grid.check(text, options)
    except GridError as exc:
        raise PlanRefused({exc.field: str(exc)}) from None
    shared = replace(options, seed=options.seed or random_seed())
    return [PlannedImage(*grid.apply(cell, text, shared), cell) for cell in grid.cells()]
