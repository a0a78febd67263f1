"""The home page's form: one textarea per prompt (a WTForms FieldList) and the batch's options."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, FieldList, FloatField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

from app.models import Generation, User
from app.providers.options import (
    ASPECT_RATIOS,
    CFG_SCALE_RANGE,
    DEFAULT_MODEL,
    DEFAULT_OPTIONS,
    MAX_PROMPT_LENGTH,
    MAX_SEED,
    MODELS,
    OPTION_NAMES,
    OUTPUT_FORMATS,
    STYLE_PRESETS,
    GenerationOptions,
    style_label,
)
from app.providers.options import (
    Model as ModelInfo,
)
from app.text.storable import StorableText
from app.variations.grids import AXES, GRID_OPTIONS, OPTION_LABELS, Grid, GridError, grid_from, split_values
from app.variations.plan import Plan, PlanRefused, plan_batch
from app.variations.templates import MAX_SAMPLES
from app.variations.wildcards import lists_for

LENGTH_MESSAGE = "This is %(length)d characters long; the limit is %(max)d."


SEED_MESSAGE = f"Use a whole number from 0 to {MAX_SEED:,}, or leave it empty."
LOCK_MESSAGE = f"To lock the seed, type a whole number from 1 to {MAX_SEED:,} or press Random."
MAX_IMAGES_PER_PROMPT = 4
CFG_MESSAGE = "Use a number from 1 to 10, or leave it empty."

# Settings of the batch as a whole, shown among the options of each image.
BATCH_SETTINGS = ("images_per_prompt",)
# The batch's variations: how its prompts are expanded, and its comparison grid's axes.
VARIATION_FIELDS = ("expand", "samples", *(f"grid_{axis}_{part}" for axis in AXES for part in ("option", "values")))
SAMPLES_MESSAGE = f"Use a whole number from 1 to {MAX_SAMPLES:,}."
EXPAND_CHOICES = [SelectChoice("none", "As typed"), SelectChoice("combinatorial", "Every combination"),
                  SelectChoice("random", "Random picks")]
AXIS_LENGTH = Length(max=500_000, message=LENGTH_MESSAGE)  # 20 values of 10,000 characters, quoted
AXIS_CHOICES = [SelectChoice("", "None")] + [SelectChoice(name, OPTION_LABELS[name]) for name in GRID_OPTIONS]


class PlainNumberMixin:
    """Replace WTForms' 'Not a valid … value' with a message that says what to type."""

    invalid_message = ""

    def process_formdata(self, valuelist: list[str]) -> None:
        """Parse the number, explaining plainly what was wrong."""
        try:
            super().process_formdata(valuelist)  # type: ignore[misc]
        except ValueError:
            raise ValueError(self.invalid_message) from None


class SeedField(PlainNumberMixin, IntegerField):
    """The seed: empty (random) or a whole number the API accepts."""

    invalid_message = SEED_MESSAGE


class SamplesField(PlainNumberMixin, IntegerField):
    """How many random picks a template makes."""

    invalid_message = SAMPLES_MESSAGE


class CfgScaleField(PlainNumberMixin, FloatField):
    """How closely SD 3.5 follows the prompt."""

    invalid_message = CFG_MESSAGE


class PromptList(FieldList):
    """The prompt rows: a FieldList whose row numbers are plain ASCII digits."""

    def _extract_indices(self, prefix: str, formdata: Iterable[str]) -> Iterator[int]:
        """Row numbers from the submitted names; 'prompts-²' passes WTForms' isdigit() and then fails int()."""
        return super()._extract_indices(prefix, [key for key in formdata if key.isascii()])


def strip_text(value: str | None) -> str:
    """Trim surrounding whitespace; None becomes empty."""
    return (value or "").strip()


class PromptForm(FlaskForm):
    """Several prompts (blank rows ignored) and options shared by the whole batch, named as the API names them.

    The option fields are declared in the order the page shows them; a field's description is its hint.
    """

    prompts = PromptList(
        TextAreaField("Prompt", filters=[strip_text],
                      validators=[Length(max=MAX_PROMPT_LENGTH, message=LENGTH_MESSAGE), StorableText()]),
        min_entries=1,
    )
    model = SelectField("Model", default=DEFAULT_OPTIONS.model, choices=[
        SelectChoice(m.id, f"{m.label} · {m.credits:g} credits") for m in MODELS.values()])
    aspect_ratio = SelectField("Aspect ratio", default=DEFAULT_OPTIONS.aspect_ratio,
                               choices=[SelectChoice(r) for r in ASPECT_RATIOS])
    style_preset = SelectField("Style", default="", choices=[SelectChoice("", style_label(None))] + [
        SelectChoice(s, style_label(s)) for s in STYLE_PRESETS])
    output_format = SelectField("Format", default=DEFAULT_OPTIONS.output_format,
                                choices=[SelectChoice(f, f.upper()) for f in OUTPUT_FORMATS])
    images_per_prompt = SelectField("Images per prompt", coerce=int, default=1,
                                    description="Each image is its own card.",
                                    choices=[SelectChoice(n, str(n)) for n in range(1, MAX_IMAGES_PER_PROMPT + 1)])
    seed = SeedField("Seed", validators=[Optional(), NumberRange(0, MAX_SEED, message=SEED_MESSAGE)],
                     description="Unlocked: every image gets its own random seed. Locked: this seed, and +1 for each "
                                 "further image of a prompt.")
    # Unlocked, every image gets its own random seed; locked, the seed above counts up per image of a prompt.
    seed_locked = BooleanField("Lock seed")
    cfg_scale = CfgScaleField("CFG scale", validators=[Optional(), NumberRange(*CFG_SCALE_RANGE, message=CFG_MESSAGE)],
                              description="SD 3.5 only (1–10): how closely to follow the prompt. Empty for the "
                                          "model's default.")
    negative_prompt = TextAreaField("Negative prompt", filters=[strip_text],
                                    description="What the images should not show.",
                                    validators=[Length(max=MAX_PROMPT_LENGTH, message=LENGTH_MESSAGE), StorableText()])

    expand = SelectField("Templates", default="none", choices=EXPAND_CHOICES,
                         description="{red|blue} fox, {2$$a|b|c}, __list__: every combination, or random picks "
                                     "(the same picks again with a locked seed).")
    samples = SamplesField("Random picks", default=4, validators=[Optional(), NumberRange(1, MAX_SAMPLES,
                                                                                         message=SAMPLES_MESSAGE)])
    grid_x_option = SelectField("X axis", default="", choices=AXIS_CHOICES)
    grid_x_values = StringField("X values", filters=[strip_text], validators=[AXIS_LENGTH, StorableText()])
    grid_y_option = SelectField("Y axis", default="", choices=AXIS_CHOICES)
    grid_y_values = StringField("Y values", filters=[strip_text], validators=[AXIS_LENGTH, StorableText()])
    grid_z_option = SelectField("Z axis (one grid each)", default="", choices=AXIS_CHOICES)
    grid_z_values = StringField("Z values", filters=[strip_text], validators=[AXIS_LENGTH, StorableText()])

    max_seed = MAX_SEED  # what the page's "Random" button may roll

    def __init__(self, *args, max_prompts: int = 10, owner: User | None = None,  # noqa: ANN002
                 max_images: int = 100, **kwargs) -> None:  # noqa: ANN003
        super().__init__(*args, **kwargs)
        self.max_prompts = max_prompts
        self.owner, self.max_images = owner, max_images
        self.plan: Plan | None = None  # what the batch makes, once validated
        self.plan_refused = False  # the fields were fine, but their templates or grid cannot be made
        self.batch_errors: list[str] = []
        self.spending_error: str | None = None  # shown next to the Generate button

    def prompt_texts(self) -> list[str]:
        """The non-blank prompts, in the order they appear."""
        return [entry.data for entry in self.prompts.entries if entry.data]

    @property
    def per_prompt(self) -> int:
        """Images per prompt as chosen, or 1 while the value is not one of the choices."""
        value = self.images_per_prompt.data
        return value if isinstance(value, int) and 1 <= value <= MAX_IMAGES_PER_PROMPT else 1

    @property
    def chosen_model(self) -> ModelInfo:
        """The selected model, or the default if the value is unknown."""
        return MODELS.get(self.model.data or "", MODELS[DEFAULT_MODEL])

    def option_fields(self) -> list[Field]:
        """The fields of the options and the batch's settings, in page order."""
        return [field for name, field in self._fields.items() if name in OPTION_NAMES or name in BATCH_SETTINGS]

    def options(self) -> GenerationOptions:
        """The validated options, an empty field as None; cfg_scale only for the models that take it, the seed
        only when locked."""
        values = {name: getattr(self, name).data for name in OPTION_NAMES}
        values = {name: None if value == "" else value for name, value in values.items()}
        model = self.chosen_model
        values["model"] = model.id
        values["seed"] = (values["seed"] or None) if self.seed_locked.data else None
        if not model.takes_cfg_scale:
            values["cfg_scale"] = None
        return GenerationOptions(**values)

    def validate(self, extra_validators=None) -> bool:  # noqa: ANN001
        """Validate each field, then the batch as a whole."""
        valid = super().validate(extra_validators)
        if self.seed_locked.data and not self.seed.errors and not self.seed.data:
            self.seed.errors = [LOCK_MESSAGE]
            valid = False
        count = len(self.prompt_texts())
        if count == 0:
            self.batch_errors.append("Write at least one prompt.")
        elif count > self.max_prompts:
            self.batch_errors.append(
                f"{count} prompts is more than the {self.max_prompts} one batch may hold; "
                f"remove {count - self.max_prompts}."
            )
        return valid and not self.batch_errors and self._planned()

    @property
    def uses_variations(self) -> bool:
        """True when a template is expanded or a grid drawn: the price then comes from the server's plan."""
        return self.expand.data in ("combinatorial", "random") or any(
            getattr(self, f"grid_{axis}_option").data for axis in AXES)

    def grid(self) -> Grid | None:
        """The comparison grid asked for, or None; GridError names the axis that is wrong."""
        return grid_from({axis: (getattr(self, f"grid_{axis}_option").data or "",
                                 split_values(getattr(self, f"grid_{axis}_values").data or "")) for axis in AXES})

    def _planned(self) -> bool:
        """Plan the batch (templates expanded, grid cells, prices); refusals go next to their fields."""
        mode = self.expand.data if self.expand.data in ("combinatorial", "random") else "none"
        try:
            self.plan = plan_batch(self.prompt_texts(), self.options(), self.per_prompt, mode,
                                   self.samples.data or 1, self.grid(),
                                   lists_for(self.owner) if mode != "none" else {}, self.max_images)
        except GridError as exc:
            self._refuse({exc.field: str(exc)})
        except PlanRefused as exc:
            self._refuse(exc.fields)
        self.plan_refused = self.plan is None
        return self.plan is not None

    def _refuse(self, fields: dict[str, str]) -> None:
        """Put each message next to its field: the prompts, the samples, or an axis's values."""
        for name, message in fields.items():
            if name == "prompts":
                self.batch_errors.append(message)
            else:
                field = getattr(self, name if name == "samples" else f"grid_{name}_values", None)
                (field.errors if field is not None else self.batch_errors).append(message)

    def variation_fields(self) -> list[Field]:
        """The variations' fields, in page order."""
        return [self._fields[name] for name in VARIATION_FIELDS]

    def first_invalid_id(self) -> str | None:
        """The id of the first field, in page order, that a refused submit should focus (None: nothing refused)."""
        for entry in self.prompts.entries:
            if entry.errors:
                return entry.id
        if self.batch_errors:
            return self.prompts.entries[0].id
        for field in self.option_fields() + self.variation_fields():
            if field.errors:
                return field.id
        return "generate" if self.spending_error else None


def reused_form(generation: Generation, max_prompts: int) -> PromptForm:
    """The form pre-filled with one image's prompt and settings, its actual seed included, to make it again."""
    options = generation.options
    # An empty option is left out, so its field shows its default ("None" for no style, an empty box).
    data = {name: value for name, value in options.as_dict().items() if value is not None}
    data.update(prompts=[generation.prompt], seed=generation.seed if generation.seed is not None else options.seed)
    data["seed_locked"] = data["seed"] is not None  # reuse means: make this very image again
    return PromptForm(formdata=None, data=data, max_prompts=max_prompts)


def rebuilt_form(form: PromptForm, texts: list[str], **changes: object) -> PromptForm:
    """A copy of the form whose rows are exactly these texts, numbered 0..n-1 (at least one row), with `changes`."""
    data = {name: field.data for name, field in form._fields.items() if name not in ("prompts", "csrf_token")}
    return PromptForm(formdata=None, data={**data, **changes, "prompts": texts or [""]}, max_prompts=form.max_prompts,
                      owner=form.owner, max_images=form.max_images)
