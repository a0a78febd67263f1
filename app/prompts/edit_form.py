"""The form of one operation on one image: its fields from the operations table, pre-filled from the image, read
back from a submit as typed, and turned into the fields app/generations/edits.py checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.models import Generation
from app.providers.operations import OPERATIONS, Field, Operation

VARY_OPERATION = "image-to-image"
UPSCALE_OPERATION = "upscale-fast"
SIDES = ("left", "right", "up", "down")  # outpaint's four-way pad
MASK = "mask"


def shown_fields(operation: Operation) -> list[Field]:
    """The fields the form shows as controls (the mask is painted, not typed), then the seed where it is taken."""
    fields = [spec for spec in operation.fields if spec.kind != MASK]
    if operation.takes_seed:
        fields.append(Field("seed", "Seed", "int", hint="Blank: a new random seed"))
    return fields


def takes_mask(operation: Operation) -> bool:
    """True for the operations whose area is painted (inpaint, erase)."""
    return any(spec.kind == MASK for spec in operation.fields)


def _text_of(value: object) -> str:
    """A default as a form control holds it: numbers as Python's %g writes them, True as "true"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class EditForm:
    """One operation's form: the values as typed (text), and each refusal by the field it belongs next to."""

    source: Generation
    operation: Operation
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    general_error: str | None = None  # about the image itself, the mask or the price: shown above the button
    general_field: str | None = None  # what it is about ("mask": painting again clears it)
    confirming: bool = False  # the price reaches CONFIRM_AT_CREDITS: the next press confirms it

    @property
    def fields(self) -> list[Field]:
        """The controls, in the table's order."""
        return shown_fields(self.operation)

    @property
    def takes_mask(self) -> bool:
        """Whether the mask painter is shown."""
        return takes_mask(self.operation)

    def params(self) -> dict[str, object]:
        """The fields to check, as edits.check_edit takes them: blank ones left to their defaults."""
        return {name: value for name, value in self.values.items() if value.strip()}

    def refuse(self, field_name: str | None, message: str) -> None:
        """Put a refusal next to its field, or above the button when no control shows it."""
        if field_name in self.values:
            self.errors[field_name] = message
        else:
            self.general_error, self.general_field = message, field_name


def operation_or_none(name: str) -> Operation | None:
    """An operation by its name in a URL."""
    return OPERATIONS.get(name)


def prefilled(source: Generation, operation: Operation) -> EditForm:
    """The form as it opens: each field's default, the image's own prompt and seed."""
    values = {spec.name: _text_of(spec.default) for spec in shown_fields(operation)}
    if "prompt" in values:
        values["prompt"] = source.prompt
    if "seed" in values and source.seed is not None:
        values["seed"] = str(source.seed)
    return EditForm(source, operation, values)


def posted(source: Generation, operation: Operation, form: Mapping[str, str]) -> EditForm:
    """The form as submitted, every value kept as typed; an unticked box is "false"."""
    values = {}
    for spec in shown_fields(operation):
        if spec.kind == "bool":
            values[spec.name] = "true" if form.get(spec.name) in ("true", "on") else "false"
        else:
            values[spec.name] = form.get(spec.name, "")
    return EditForm(source, operation, values)


def with_overrides(edit: EditForm, args: Mapping[str, str]) -> EditForm:
    """The opening form with the values a link or a changed control named (?model=ultra reprices it)."""
    for name in edit.values:
        if name in args:
            edit.values[name] = args[name][:10_000]
    return edit


def quick(source: Generation, operation: Operation) -> EditForm:
    """A one-click Vary or Upscale: the opening form sent as it is, a variation with a new random seed."""
    edit = prefilled(source, operation)
    if operation.name == VARY_OPERATION:
        edit.values["seed"] = ""
    return edit
