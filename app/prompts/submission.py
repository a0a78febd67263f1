"""A batch submitted without the page (the JSON API, `flask generate`), checked by the home form's own rules.

The values are handed to PromptForm as the form would post them, so every rule, limit and message is the
form's: there is no second copy to drift apart from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from app.prompts.forms import BATCH_SETTINGS, PromptForm
from app.providers.options import OPTION_NAMES, GenerationOptions

# What a submission may set besides its prompts: every option, and the batch's settings.
SUBMITTED_FIELDS = (*OPTION_NAMES, *BATCH_SETTINGS)


@dataclass(frozen=True)
class Submission:
    """Prompts and options that passed the form's rules: what create_batch takes."""

    prompts: list[str]
    options: GenerationOptions
    images_per_prompt: int = 1
    expected_credits: float | None = None  # the price the submitter was shown; None: not stated
    webhook_url: str | None = None  # the API's per-batch webhook (batch.completed only); None: none


class SubmissionInvalid(ValueError):
    """The form refused the submission; `fields` maps each field (or "prompts[2]") to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))


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
            fields[name] = " ".join(errors)
    return fields


def validate_submission(prompts: Sequence[str], options: Mapping[str, object], max_prompts: int,
                        label: Callable[[int], str] = api_label) -> Submission:
    """The prompts (blank ones skipped, as the form skips blank rows) and options, or SubmissionInvalid."""
    form = PromptForm(formdata=as_formdata(prompts, options), meta={"csrf": False}, max_prompts=max_prompts)
    if not form.validate():
        raise SubmissionInvalid(_errors(form, label))
    return Submission(prompts=form.prompt_texts(), options=form.options(), images_per_prompt=form.per_prompt)
