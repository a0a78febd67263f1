"""The home page's prompt form: one textarea per prompt, as a WTForms FieldList."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import FieldList, TextAreaField
from wtforms.validators import Length

MAX_PROMPT_LENGTH = 10_000  # the API's limit, counted after trimming


def strip_text(value: str | None) -> str:
    """Trim surrounding whitespace; None becomes empty."""
    return (value or "").strip()


class PromptForm(FlaskForm):
    """Several prompts; blank rows are ignored, the rest must fit the API and the batch cap."""

    prompts = FieldList(
        TextAreaField(
            "Prompt",
            filters=[strip_text],
            validators=[Length(max=MAX_PROMPT_LENGTH,
                               message="This prompt is %(length)d characters long; the limit is %(max)d.")],
        ),
        min_entries=1,
    )

    def __init__(self, *args, max_prompts: int = 10, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.max_prompts = max_prompts
        self.batch_errors: list[str] = []

    def prompt_texts(self) -> list[str]:
        """The non-blank prompts, in the order they appear."""
        return [entry.data for entry in self.prompts.entries if entry.data]

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001
        """Validate each row, then the batch as a whole."""
        valid = super().validate(extra_validators)
        count = len(self.prompt_texts())
        if count == 0:
            self.batch_errors.append("Write at least one prompt.")
        elif count > self.max_prompts:
            self.batch_errors.append(
                f"{count} prompts is more than the {self.max_prompts} one batch may hold; "
                f"remove {count - self.max_prompts}."
            )
        return valid and not self.batch_errors


def rebuilt_form(texts: list[str], max_prompts: int) -> PromptForm:
    """A form whose rows are exactly these texts, numbered 0..n-1 (at least one row)."""
    return PromptForm(formdata=None, data={"prompts": texts or [""]}, max_prompts=max_prompts)
