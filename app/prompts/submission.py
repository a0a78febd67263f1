"""A batch submitted without the page (the JSON API, `flask generate`), checked by the home form's own rules.

The values are handed to PromptForm as the form would post them, so every rule, limit and message is the
form's: there is no second copy to drift apart from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from app.models import User
from app.prompts.forms import BATCH_SETTINGS, VARIATION_FIELDS, PromptForm
from app.providers.options import OPTION_NAMES, GenerationOptions
from app.variations.grids import AXES, joined_values
from app.variations.plan import Plan

# What a submission may set besides its prompts: every option, the batch's settings and its variations.
SUBMITTED_FIELDS = (*OPTION_NAMES, *BATCH_SETTINGS, *VARIATION_FIELDS)


@dataclass(frozen=True)
class Submission:
    """Prompts and options that passed the form's rules: what create_batch takes."""

    prompts: list[str]
    options: GenerationOptions
    images_per_prompt: int = 1
    expected_credits: float | None = None  # the price the submitter was shown; None: not stated
    plan: Plan | None = None  # every image, templates expanded and grid cells made
    webhook_url: str | None = None  # the API's per-batch webhook (batch.completed only); None: none

    def batch_arguments(self) -> dict[str, object]:
        """What create_batch takes besides the owner: the planned images and the grid."""
        plan = self.plan
        return {"images_per_prompt": self.images_per_prompt, "images": plan.as_rows() if plan else None,
                "grid": plan.grid.as_json() if plan and plan.grid else None}


class SubmissionInvalid(ValueError):
    """The form refused the submission; `fields` maps each field (or "prompts[2]") to its message."""

    def __init__(self, fields: dict[str, str], planned: bool = False) -> None:
        self.fields = fields
        self.planned = planned  # refused by the plan (templates, grid, MAX_IMAGES_PER_BATCH), every field fine
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))


def variation_values(expand: str | None = None, samples: int | None = None,
                     grid: Mapping[str, Mapping[str, object]] | None = None) -> dict[str, object]:
    """The form's variation fields for an expand mode, a number of random picks and a grid's axes
    ({"x": {"option", "values"}, …}), as the API and `flask generate` state them."""
    values: dict[str, object] = {"expand": expand, "samples": samples}
    for axis in AXES:
        given = (grid or {}).get(axis)
        if given:
            values[f"grid_{axis}_option"] = given.get("option")
            values[f"grid_{axis}_values"] = joined_values(list(given.get("values") or []))  # type: ignore[call-overload]
    return values


def field_label(name: str) -> str:
    """How the API names a form field in its messages: grid_x_values is grid.x.values."""
    if name.startswith("grid_"):
        _, axis, part = name.split("_", 2)
        return f"grid.{axis}.{part}"
    return name


def api_label(index: int) -> str:
    """How the JSON API names one prompt: its index in the request's array."""
    return f"prompts[{index}]"


def as_formdata(prompts: Sequence[str], options: Mapping[str, object]) -> MultiDict:
    """What the home form would post for these prompts and options (None or absent: the field left empty)."""
    data: MultiDict = MultiDict()
    for index, text in enumerate(prompts):
        data.add(f"prompts-{index}", text)
    for name in SUBMITTED_FIELDS:
        value = options.get(name)
        if value is not None:
            data.add(name, value if isinstance(value, str) else repr(value))
    if str(options.get("seed") or "").strip().lstrip("0"):
        data.add("seed_locked", "y")  # a seed given outside the page is meant to be used; 0 stays random
    return data


def _errors(form: PromptForm, label: Callable[[int], str]) -> dict[str, str]:
    """The form's messages keyed by field, each prompt by `label(index)`."""
    fields = {label(index): " ".join(entry.errors) for index, entry in enumerate(form.prompts.entries)
              if entry.errors}
    if form.batch_errors:
        fields["prompts"] = " ".join(form.batch_errors)
    for name in SUBMITTED_FIELDS:
        errors = getattr(form, name).errors
        if errors:
            fields[field_label(name)] = " ".join(errors)
    return fields


def validate_submission(prompts: Sequence[str], options: Mapping[str, object], max_prompts: int,
                        label: Callable[[int], str] = api_label, owner: User | None = None,
                        max_images: int = 100) -> Submission:
    """The prompts (blank ones skipped, as the form skips blank rows), options and plan, or SubmissionInvalid.

    Templates read `owner`'s wildcard lists; the plan holds at most `max_images` images.
    """
    form = PromptForm(formdata=as_formdata(prompts, options), meta={"csrf": False}, max_prompts=max_prompts,
                      owner=owner, max_images=max_images)
    if not form.validate():
        raise SubmissionInvalid(_errors(form, label), planned=form.plan_refused)
    return Submission(prompts=form.prompt_texts(), options=form.options(), images_per_prompt=form.per_prompt,
                      plan=form.plan)
