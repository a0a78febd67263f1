"""The API's request and response shapes (marshmallow), from which flask-smorest writes the OpenAPI document.

Request bodies are checked twice over by one set of rules: marshmallow checks the JSON types, then the home
form (app/prompts/submission.py) checks the values, with its own messages. The enums, ranges and lengths the
document states come from the same constants the form's fields are built from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, replace
from typing import Any, get_args

import marshmallow as ma
from flask import current_app
from flask_login import current_user
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from app.api.errors import ApiProblem
from app.gallery.pages import GALLERY_OPERATIONS, GALLERY_STATUSES
from app.generations.edits import SHORTCUTS
from app.models import MAX_ID, Status
from app.prompts.forms import MAX_IMAGES_PER_PROMPT
from app.prompts.submission import SUBMITTED_FIELDS, SubmissionInvalid, validate_submission, variation_values
from app.providers.operations import IMAGE_TO_IMAGE_MODELS, OPERATIONS
from app.providers.options import (
    MAX_PROMPT_LENGTH,
    MAX_SEED,
    MODELS,
    OPTION_FIELDS,
    OPTION_NAMES,
    OPTION_TYPES,
    OUTPUT_FORMATS,
    STYLE_PRESETS,
)
from app.text.storable import UNSAFE
from app.variations.grids import GRID_OPTIONS, MAX_AXIS_VALUES
from app.variations.templates import EXPAND_MODES, MAX_SAMPLES
from app.variations.wildcards import MAX_VALUE_LENGTH, MAX_VALUES, NAME
from app.webhooks.addresses import MAX_URL_LENGTH, URL_PATTERN
from app.webhooks.bodies import BODY_FORMATS, EVENTS

MAX_PAGE_SIZE = 100
# Field metadata read by app/api/openapi.py: limits that are settings, and JSON Schema apispec has no name for.
SETTING_LIMITS = "setting_limits"
EXTRA_JSON_SCHEMA = "json_schema"
CURSOR_PATTERN = r"^([0-5]-)?[0-9]{1,17}-[0-9]{1,10}$"  # sorted by rating, the cursor starts with one
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII without spaces, as Stripe's keys are


def _char_class(belongs: Callable[[str], bool]) -> str:
    """The body of a regex class (as \\uXXXX ranges) of the BMP characters `belongs` accepts, surrogates aside.

    Lone surrogates cannot be written in UTF-8, and JSON Schema validators reject patterns that name them.
    """
    codes = [code for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF and belongs(chr(code))]
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(f"\\u{low:04x}" + (f"-\\u{high:04x}" if high > low else "") for low, high in ranges)


# Text the database and the API can take (app/text/storable.py's one check), in the document's terms.
_UNSAFE = _char_class(lambda ch: UNSAFE.fullmatch(ch) is not None)
STORABLE_TEXT = f"^[^{_UNSAFE}]*$"
# A prompt that is not blank (str.strip() leaves something): a batch needs one, the form skipping blank rows.
_SPACE = _char_class(str.isspace)
NOT_BLANK = f"^[^{_UNSAFE}]*[^{_UNSAFE}{_SPACE}][^{_UNSAFE}]*$"


def _enum(values: list[Any], nullable: bool = True) -> dict[str, Any]:
    """Document the values a field takes (null included when it may be left empty)."""
    return {"enum": [*values, None] if nullable else list(values)}


class StrictFloat(fields.Float):
    """A JSON number, never a numeric string, NaN or infinity."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON true or false, never 0, 1 or "yes"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:  # noqa: ANN401
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class WholeNumber(fields.Integer):
    """A JSON integer as JSON Schema means it: 3 and 3.0 alike, never 3.5, a string or a boolean."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:  # noqa: ANN401
        if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
            value = int(value)
        return super()._validated(value)


class ErrorDetailSchema(ma.Schema):
    """What went wrong."""

    code = fields.String(required=True, metadata={"description": "A stable word for programs: not_found, …"})
    message = fields.String(required=True, metadata={"description": "A sentence for people."})
    fields_ = fields.Dict(keys=fields.String(), values=fields.String(), data_key="fields",
                          metadata={"description": 'Per-field messages, such as {"prompts[2]": "…"}.'})


class ErrorSchema(ma.Schema):
    """Every error answer: {"error": {"code", "message", "fields"?}}."""

    error = fields.Nested(ErrorDetailSchema, required=True)


def _option_type(name: str) -> tuple[type, bool]:
    """An option's value type (str, int or float) and whether it may be None, from its declaration."""
    hint = OPTION_TYPES[name]
    kinds = [kind for kind in get_args(hint) or (hint,) if kind is not type(None)]
    return kinds[0], len(kinds) < len(get_args(hint) or (hint,))


def _option_out(option: Field) -> fields.Field:
    """How an answer states one option."""
    kind, nullable = _option_type(option.name)
    description = {"description": option.metadata["doc"]} if option.metadata["doc"] else {}
    return OPTION_OUT_FIELDS[kind](required=True, allow_none=nullable, metadata=description)


def _option_in(option: Field) -> fields.Field:
    """What a request may send for one option (null or absent: the option's default), and what the document says."""
    facts, (kind, nullable) = option.metadata, _option_type(option.name)
    metadata: dict[str, Any] = {}
    if facts["choices"]:
        metadata.update(_enum(["", *facts["choices"]] if nullable else list(facts["choices"])))
    if facts["bounds"]:
        metadata.update(minimum=facts["bounds"][0], maximum=facts["bounds"][1])
    if facts["max_length"]:
        metadata.update(maxLength=facts["max_length"], pattern=STORABLE_TEXT)
    if option.default is not None:
        metadata["default"] = option.default
    if facts["doc"]:
        metadata["description"] = facts["doc"]
    if kind is float:
        return StrictFloat(allow_nan=False, allow_none=True, metadata=metadata)
    return (WholeNumber if kind is int else fields.String)(allow_none=True, metadata=metadata)


OPTION_OUT_FIELDS: dict[type, type[fields.Field]] = {str: fields.String, int: fields.Integer, float: fields.Float}
# A batch's options, named as the Stability API names them: one field per option GenerationOptions declares.
OptionsSchema = ma.Schema.from_dict({option.name: _option_out(option) for option in OPTION_FIELDS},
                                    name="OptionsSchema")
_OptionsRequestSchema = ma.Schema.from_dict({option.name: _option_in(option) for option in OPTION_FIELDS},
                                            name="OptionsRequestSchema")


class AxisValue(fields.Field):
    """One value of a grid axis: a JSON string or number (never a boolean, list or object)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("invalid")
        return value

    default_error_messages = {"invalid": "Give a string or a number."}


AXIS_VALUE_SCHEMA = {"oneOf": [{"type": "string", "maxLength": MAX_PROMPT_LENGTH, "pattern": STORABLE_TEXT},
                               {"type": "number"}]}


class AxisSchema(ma.Schema):
    """One axis of a comparison grid: the option it varies (as the API names it, or prompt_sr) and its values."""

    option = fields.String(required=True, validate=validate.OneOf(GRID_OPTIONS), metadata={
        "description": "prompt_sr: the first value is found in the prompt and replaced by each value in turn"})
    values = fields.List(AxisValue(metadata={EXTRA_JSON_SCHEMA: AXIS_VALUE_SCHEMA}), required=True,
                         validate=validate.Length(1, MAX_AXIS_VALUES))


class GridRequestSchema(ma.Schema):
    """A comparison grid: X, optionally Y, and Z (one grid per value)."""

    x = fields.Nested(AxisSchema, required=True)
    y = fields.Nested(AxisSchema)
    z = fields.Nested(AxisSchema)


class BatchRequestSchema(_OptionsRequestSchema):  # type: ignore[misc,valid-type]
    """A new batch: the home form's fields as JSON. Blank prompts are skipped, as the form skips blank rows."""

    prompts = fields.List(
        fields.String(metadata={"maxLength": MAX_PROMPT_LENGTH, "pattern": STORABLE_TEXT}), required=True,
        # Blank entries are skipped as the form skips blank rows: the limits count the prompts that are not blank.
        metadata={"minItems": 1, SETTING_LIMITS: {"maxContains": "MAX_PROMPTS_PER_BATCH"},
                  EXTRA_JSON_SCHEMA: {"contains": {"type": "string", "pattern": NOT_BLANK}, "minContains": 1}},
    )
    images_per_prompt = WholeNumber(allow_none=True, metadata={
        "minimum": 1, "maximum": MAX_IMAGES_PER_PROMPT, "default": 1,
        "description": "Images made of each prompt, each with its own seed (a given seed counts up by one)"})

    webhook_url = fields.String(allow_none=True, validate=[validate.Length(min=1, max=MAX_URL_LENGTH),
                                                         validate.Regexp(URL_PATTERN)], metadata={
        "description": "Also tell this URL (public addresses only) when the batch completes: one batch.completed "
                       "delivery, signed with the secret the answer's webhook_secret gives once"})
    expected_credits = StrictFloat(allow_nan=False, allow_none=True, validate=validate.Range(min=0), metadata={
        "description": "The price you were shown (prompts × images_per_prompt × the model's credits per image): if "
                       "the batch costs anything else, the answer is 409 and nothing is created or charged. Omit it "
                       "to accept the current price."})

    expand = fields.String(allow_none=True, validate=validate.OneOf(EXPAND_MODES), metadata={
        "default": "none", "description": "Prompt templates ({a|b}, {2$$a|b|c}, __list__): none (as typed), "
                                          "combinatorial (every combination) or random (`samples` picks, the same "
                                          "again with a locked seed)"})
    samples = WholeNumber(allow_none=True, metadata={"minimum": 1, "maximum": MAX_SAMPLES, "default": 4,
                                                     "description": "Random picks per template (expand: random)"})
    grid = fields.Nested(GridRequestSchema, allow_none=True, metadata={
        "description": "A comparison grid over one prompt: one image per cell"})

    @ma.post_load
    def checked_by_the_form(self, data: dict[str, Any], **_kwargs: Any) -> Any:  # noqa: ANN401
        """Hand the values to the home form's rules; its messages become the per-field errors."""
        options = {name: data.get(name) for name in (*OPTION_NAMES, "images_per_prompt")}
        options.update(variation_values(data.get("expand"), data.get("samples"), data.get("grid")))
        assert set(options) <= set(SUBMITTED_FIELDS)
        try:
            submission = validate_submission(data["prompts"], options, current_app.config["MAX_PROMPTS_PER_BATCH"],
                                             owner=current_user, max_images=current_app.config["MAX_IMAGES_PER_BATCH"])
        except SubmissionInvalid as exc:
            if exc.planned:  # rules no schema states: a template's syntax and lists, a grid's cells, the cap
                raise ApiProblem(422, "variation_refused", "The templates or grid cannot be made as asked; see "
                                 "fields.", exc.fields) from None
            raise ma.ValidationError(exc.fields) from None  # type: ignore[arg-type]
        return replace(submission, expected_credits=data.get("expected_credits"), webhook_url=data.get("webhook_url"))


def _operation_field(name: str) -> fields.Field:
    """One field some operation takes, as the document states it: the widest bounds and every choice across the
    operations that take it (each operation's own limits are checked after, answering 422 naming the field)."""
    specs = [spec for op in OPERATIONS.values() for spec in op.fields if spec.name == name]
    first, metadata = specs[0], {}
    users = [op.name for op in OPERATIONS.values() if any(spec.name == name for spec in op.fields)]
    metadata["description"] = f"{first.label}: {', '.join(users)}" + (f". {first.hint}" if first.hint else "")
    bounds = [spec.bounds for spec in specs if spec.bounds]
    if bounds:
        metadata.update(minimum=min(low for low, _ in bounds), maximum=max(high for _, high in bounds))
    if first.kind == "text":
        return fields.String(allow_none=True, metadata={**metadata, "maxLength": first.max_length or MAX_PROMPT_LENGTH,
                                                        "pattern": STORABLE_TEXT})
    if first.kind == "float":
        return StrictFloat(allow_nan=False, allow_none=True, metadata=metadata)
    if first.kind in ("int", "image"):
        return WholeNumber(allow_none=True, metadata=metadata)
    if first.kind == "bool":
        return fields.Boolean(allow_none=True, metadata=metadata)
    choices = sorted({choice for spec in specs for choice in spec.choices or ()})
    return fields.String(allow_none=True, metadata={**metadata, **_enum(choices)})


BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
OPERATION_FIELD_NAMES = sorted({spec.name for op in OPERATIONS.values() for spec in op.fields if spec.kind != "mask"})
_EditFieldsSchema = ma.Schema.from_dict({
    "operation": fields.String(required=True, metadata={**_enum([*OPERATIONS, *SHORTCUTS], nullable=False),
                                                        "description": 'An operation, or a shortcut: "vary" is '
                                                        'image-to-image with the image\'s own prompt at strength 0.6, '
                                                        '"upscale" is upscale-fast'}),
    **{name: _operation_field(name) for name in OPERATION_FIELD_NAMES if name != "model"},
    "model": fields.String(allow_none=True, metadata={**_enum(list(IMAGE_TO_IMAGE_MODELS)),
                                                      "description": "image-to-image only (default sd3.5-large)"}),
    "mask": fields.String(allow_none=True, metadata={
        "description": "inpaint and erase: a PNG of the image's size, base64; white is changed, black kept",
        "maxLength": 1_400_000, "pattern": BASE64}),
    "seed": WholeNumber(allow_none=True, metadata={"minimum": 0, "maximum": MAX_SEED,
                                                   "description": "0 or null: random"}),
    "style_preset": fields.String(allow_none=True, metadata=_enum(list(STYLE_PRESETS))),
    "negative_prompt": fields.String(allow_none=True, metadata={"maxLength": MAX_PROMPT_LENGTH,
                                                                "pattern": STORABLE_TEXT}),
    "output_format": fields.String(allow_none=True, metadata=_enum(list(OUTPUT_FORMATS))),
    "cfg_scale": StrictFloat(allow_nan=False, allow_none=True, metadata={
        "minimum": 1, "maximum": 10, "description": "image-to-image with an SD 3.5 model only"}),
    "expected_credits": StrictFloat(allow_nan=False, allow_none=True, validate=validate.Range(min=0), metadata={
        "description": "The price you were shown (images × the operation's credits): if it costs anything else, "
                       "the answer is 409 and nothing is created or charged."}),
}, name="EditFieldsSchema")


class EditRequestSchema(_EditFieldsSchema):  # type: ignore[misc,valid-type]
    """An operation on one image: its name and its fields, named as the Stability API names them."""

    @ma.post_load
    def without_empty(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:  # noqa: ANN401
        """Null means not given: the operation's default."""
        return {name: value for name, value in data.items() if value is not None}


class EditsRequestSchema(EditRequestSchema):
    """One operation on several images, as one batch (upscale fast, remove background, vary, …)."""

    image_ids = fields.List(WholeNumber(validate=validate.Range(1, MAX_ID)), required=True,
                            metadata={"minItems": 1, "maxItems": 100, "uniqueItems": True})


class IdempotencyHeaderSchema(ma.Schema):
    """Headers of POST /api/batches."""

    idempotency_key = fields.String(data_key="Idempotency-Key", validate=validate.Regexp(IDEMPOTENCY_KEY_PATTERN),
                                    metadata={"description": "The same key within 24 h returns the first answer "
                                                             "and creates nothing new."})


class PageArgsSchema(ma.Schema):
    """?before=<cursor>&limit=<n>: keyset pages, newest first."""

    before = fields.String(validate=validate.Regexp(CURSOR_PATTERN),
                           metadata={"description": "The `next` cursor of the previous page."})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, MAX_PAGE_SIZE))


class ImageArgsSchema(PageArgsSchema):
    """The gallery's filters, as /all/ takes them."""

    limit = fields.Integer(validate=validate.Range(1, MAX_PAGE_SIZE),
                           metadata={"description": "Images per page; default GALLERY_PAGE_SIZE"})
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Words in the prompt."})
    status = fields.String(validate=validate.OneOf(GALLERY_STATUSES))
    model = fields.String(validate=validate.OneOf(list(MODELS)))
    operation = fields.String(validate=validate.OneOf(list(GALLERY_OPERATIONS)),
                              metadata={"description": 'What made it: "generate", "upload" or an operation.'})
    owner = fields.Integer(validate=validate.Range(1, MAX_ID), metadata={"description": "Admins only: one user's."})
    starred = fields.Boolean(metadata={"description": "Only the images you starred."})
    sort = fields.String(validate=validate.OneOf(["newest", "oldest", "rating"]),
                         metadata={"description": "newest (default), oldest, or rating: yours, highest first, unrated "
                                                  "last"})
    collection = fields.Integer(validate=validate.Range(1, MAX_ID),
                                metadata={"description": "Only this collection's images (yours or one the team "
                                                         "shares; any other answers 404)."})


class LinksSchema(ma.Schema):
    """Where an image can be fetched (with the same token)."""

    file_url = fields.String(required=True)
    thumb_url = fields.String(required=True)
    download_url = fields.String(required=True)


class CellSchema(ma.Schema):
    """Indexes into the grid's axes' values (null for an axis the grid does not have)."""

    x = fields.Integer(required=True, allow_none=True)
    y = fields.Integer(required=True, allow_none=True)
    z = fields.Integer(required=True, allow_none=True)


class GridAxisSchema(ma.Schema):
    """An axis as sent, its values resolved (a style's "none" is null; numbers are numbers)."""

    option = fields.String(required=True, validate=validate.OneOf(GRID_OPTIONS))
    values = fields.List(fields.Raw(metadata={EXTRA_JSON_SCHEMA: {"type": ["string", "number", "null"]}}),
                         required=True)


class GridSchema(ma.Schema):
    """A batch's comparison grid."""

    x = fields.Nested(GridAxisSchema, required=True)
    y = fields.Nested(GridAxisSchema)
    z = fields.Nested(GridAxisSchema)


class GenerationSchema(ma.Schema):
    """One prompt of a batch and what became of it."""

    id = fields.Integer(required=True)
    position = fields.Integer(required=True)
    prompt = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in Status]))
    error = fields.String(required=True, allow_none=True)
    api_error_id = fields.String(required=True, allow_none=True)
    attempts = fields.Integer(required=True)
    queue_ahead = fields.Integer(required=True, allow_none=True,
                                 metadata={"description": "Your queued images ahead of this one"})
    seed = fields.Integer(required=True, allow_none=True, metadata={"description": "The seed the API used"})
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    image = fields.Nested(LinksSchema, required=True, allow_none=True)
    operation = fields.String(required=True, metadata={
        "description": '"generate" (from text), "upload", or the operation that made it from source_id'})
    source_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The image it was made from (null from text, or once that image was deleted)"})
    cell = fields.Nested(CellSchema, required=True, allow_none=True,
                         metadata={"description": "Its place in the batch's grid (null without one)"})


class ProgressSchema(ma.Schema):
    """Counts of a batch's generations (failed includes filtered and canceled)."""

    total = fields.Integer(required=True)
    succeeded = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    pending = fields.Integer(required=True)


class CostSchema(ma.Schema):
    """Credits: per image, what was reserved and refunded, and what the batch holds now (reserved − refunded)."""

    credits_per_image = fields.Float(required=True)
    credits = fields.Float(required=True)
    reserved = fields.Float(required=True, metadata={"description": "Reserved at submission and by each retry"})
    refunded = fields.Float(required=True, metadata={"description": "Given back for images the API never charged"})


class BatchSummarySchema(ma.Schema):
    """A batch in the list."""

    id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    done = fields.Boolean(required=True)
    progress = fields.Nested(ProgressSchema, required=True)
    url = fields.String(required=True)
    page_url = fields.String(required=True)


class BatchSchema(BatchSummarySchema):
    """A batch with its options, cost and generations in prompt order."""

    webhook_secret = fields.String(metadata={"description": "Only in the answer that made a batch with a "
                                                            "webhook_url: the whsec_… secret its delivery is signed "
                                                            "with, shown this once"})
    options = fields.Nested(OptionsSchema, required=True)
    cost = fields.Nested(CostSchema, required=True)
    zip_url = fields.String(required=True)
    generations = fields.List(fields.Nested(GenerationSchema), required=True)
    grid = fields.Nested(GridSchema, required=True, allow_none=True,
                         metadata={"description": "The comparison grid (null without one)"})
    grid_image_url = fields.String(required=True, allow_none=True, metadata={
        "description": "One labelled PNG of the grid, once every cell is finished (null before, or without a grid)"})


class BatchPageSchema(ma.Schema):
    """One page of batches and the cursor of the next (null on the last)."""

    items = fields.List(fields.Nested(BatchSummarySchema), required=True)
    next = fields.String(required=True, allow_none=True)


class ImageSchema(ma.Schema):
    """An image with everything it was made with."""

    id = fields.Integer(required=True)
    batch_id = fields.Integer(required=True)
    owner_id = fields.Integer(required=True, allow_none=True)
    position = fields.Integer(required=True)
    prompt = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(GALLERY_STATUSES))
    options = fields.Nested(OptionsSchema, required=True)
    seed = fields.Integer(required=True, allow_none=True)
    provider = fields.String(required=True, metadata={"description": '"demo": a placeholder drawn offline'})
    finish_reason = fields.String(required=True, allow_none=True)
    api_request_id = fields.String(required=True, allow_none=True)
    mime_type = fields.String(required=True, allow_none=True)
    width = fields.Integer(required=True, allow_none=True)
    height = fields.Integer(required=True, allow_none=True)
    byte_size = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    operation = fields.String(required=True, metadata={
        "description": '"generate" (from text), "upload", or the operation that made it from source_id'})
    source_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The image it was made from (null from text, or once that image was deleted)"})
    file_url = fields.String(required=True)
    thumb_url = fields.String(required=True)
    download_url = fields.String(required=True)
    starred = fields.Boolean(required=True, metadata={"description": "You starred it"})
    my_rating = fields.Integer(required=True, allow_none=True, validate=validate.Range(1, 5),
                               metadata={"description": "Your rating, 1 to 5 (null: none)"})
    rating_average = fields.Float(required=True, allow_none=True,
                                  metadata={"description": "Everyone's ratings' average (null: none yet)"})
    rating_count = fields.Integer(required=True, metadata={"description": "How many people rated it"})


class ImagePageSchema(ma.Schema):
    """One page of the gallery and the cursor of the next (null on the last)."""

    items = fields.List(fields.Nested(ImageSchema), required=True)
    next = fields.String(required=True, allow_none=True)


class CanceledSchema(ma.Schema):
    """How many images a cancel stopped, and the batch as it is now."""

    canceled = fields.Integer(required=True)
    batch = fields.Nested(BatchSchema, required=True)


class CreditsSchema(ma.Schema):
    """This month's allowance (UTC calendar month); limit and left are null with no cap."""

    month = fields.String(required=True)
    used = fields.Float(required=True)
    limit = fields.Float(required=True, allow_none=True)
    left = fields.Float(required=True, allow_none=True)


class MeSchema(ma.Schema):
    """Who the token (or session) belongs to."""

    id = fields.Integer(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(["admin", "member"]))
    auth_mode = fields.String(required=True, validate=validate.OneOf(["accounts", "none"]))
    credits = fields.Nested(CreditsSchema, required=True)


class DeleteAccountSchema(ma.Schema):
    """DELETE /api/me: your password, as a token alone must not be enough to delete an account."""

    password = fields.String(required=True, validate=validate.Length(min=1, max=1024),
                             metadata={"description": "The password you sign in with"})


class DeletionSchema(ma.Schema):
    """The deletion has begun: you are signed out and your tokens refused; the rest goes in the background."""

    status = fields.String(required=True, validate=validate.OneOf(["deleting"]))
    message = fields.String(required=True)


class PreviewSchema(ma.Schema):
    """What a batch request would make, without making anything."""

    prompts = fields.List(fields.String(), required=True, metadata={"description": "Every prompt, in order"})
    images = fields.Integer(required=True)
    credits = fields.Float(required=True, metadata={"description": "What the batch would reserve"})


class WildcardRequestSchema(ma.Schema):
    """A wildcard list: written __name__ in a template."""

    name = fields.String(required=True, validate=validate.Regexp(NAME.pattern), metadata={
        "description": "Letters, digits, - and _; unique among your lists"})
    values = fields.List(fields.String(metadata={"maxLength": MAX_VALUE_LENGTH, "pattern": STORABLE_TEXT}),
                         required=True, validate=validate.Length(1, MAX_VALUES), metadata={
                             EXTRA_JSON_SCHEMA: {"contains": {"type": "string", "pattern": NOT_BLANK}}})
    shared = StrictBoolean(load_default=False, metadata={"description": "Admins only: everyone may use it"})


class WildcardSchema(ma.Schema):
    """A wildcard list."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    values = fields.List(fields.String(), required=True)
    shared = fields.Boolean(required=True)
    owner_id = fields.Integer(required=True)
    mine = fields.Boolean(required=True, metadata={"description": "False for a list someone shared"})
    txt_url = fields.String(required=True, metadata={"description": "The list as a .txt file, one value a line"})


class WildcardListSchema(ma.Schema):
    """Your lists, then those shared with everyone."""

    items = fields.List(fields.Nested(WildcardSchema), required=True)


# GET /api/export answers a ZIP, not JSON: the document says so in its own terms.
EXPORT_ZIP = {"type": "string", "format": "binary",
              "description": "A ZIP: images/<id>-<words of the prompt>.<ext> for every image, then manifest.json"}


class UploadSchema(ma.Schema):
    """A picture of your own, sent as multipart/form-data."""

    file = Upload(required=True, metadata={"description": "A PNG, JPEG or WebP image: at most 10 MiB, 4096 × 4096 "
                                                          "pixels and 8,192 on a side; its type is read from the "
                                                          "bytes, never the name; metadata is dropped"})


class RatingSchema(ma.Schema):
    """PUT /api/images/{id}/rating."""

    rating = WholeNumber(required=True, validate=validate.Range(1, 5), metadata={"description": "1 to 5"})


VISIBILITY_VALUES = ["private", "team-view", "team-edit"]
COLLECTION_NAME = [validate.Length(1, 100), validate.Regexp(NOT_BLANK)]


class CollectionRequestSchema(ma.Schema):
    """A new collection."""

    name = fields.String(required=True, validate=COLLECTION_NAME)
    visibility = fields.String(load_default="private", validate=validate.OneOf(VISIBILITY_VALUES),
                               metadata={"description": "private; team-view: everyone with an account sees its "
                                                        "images; team-edit: and may add and remove them"})


class CollectionPatchSchema(ma.Schema):
    """Rename, share or unshare, or choose the cover (one of the collection's images)."""

    name = fields.String(validate=COLLECTION_NAME)
    visibility = fields.String(validate=validate.OneOf(VISIBILITY_VALUES))
    cover_id = fields.Integer(validate=validate.Range(1, MAX_ID))


class ImageIdsSchema(ma.Schema):
    """POST/DELETE /api/collections/{id}/images."""

    image_ids = fields.List(fields.Integer(validate=validate.Range(1, MAX_ID)), required=True,
                            validate=validate.Length(1, 100), metadata={"minItems": 1, "maxItems": 100})


class CollectionSchema(ma.Schema):
    """A collection: its name, who sees it, its cover and how many images it holds."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITY_VALUES))
    owner_id = fields.Integer(required=True, allow_none=True)
    cover_id = fields.Integer(required=True, allow_none=True, metadata={"description": "null: no image yet"})
    image_count = fields.Integer(required=True)
    may_edit = fields.Boolean(required=True, metadata={"description": "You may add and remove images"})
    created_at = fields.DateTime(required=True)
    images_url = fields.String(required=True, metadata={"description": "GET /api/images?collection=ID"})
    zip_url = fields.String(required=True)


class CollectionListSchema(ma.Schema):
    """Your collections and those the team shares."""

    items = fields.List(fields.Nested(CollectionSchema), required=True)


class CollectionChangeSchema(ma.Schema):
    """How many images an add or remove changed, and the collection now."""

    changed = fields.Integer(required=True)
    collection = fields.Nested(CollectionSchema, required=True)


class ShareLinkRequestSchema(ma.Schema):
    """A new share link: exactly one of image_id and collection_id."""

    image_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    collection_id = fields.Integer(validate=validate.Range(1, MAX_ID))
    expires_in_days = WholeNumber(required=True, allow_none=True, validate=validate.OneOf([1, 7, 30]),
                                  metadata={**_enum([1, 7, 30]), "description": "1, 7 or 30; null: never"})
    show_owner = fields.Boolean(load_default=False, metadata={"description": "Show your email on the link's page"})

    @ma.validates_schema
    def one_target(self, data: dict[str, Any], **_kwargs: Any) -> None:  # noqa: ANN401
        """Exactly one of image_id and collection_id."""
        if ("image_id" in data) == ("collection_id" in data):
            raise ma.ValidationError("Send exactly one of image_id and collection_id.", "image_id")


# Schema-level JSON Schema apispec has no marshmallow term for, merged into the document by app/api/openapi.py.
SCHEMA_EXTRAS = {"ShareLinkRequest": {"oneOf": [{"required": ["image_id"], "not": {"required": ["collection_id"]}},
                                                {"required": ["collection_id"], "not": {"required": ["image_id"]}}]}}


class ShareLinkSchema(ma.Schema):
    """A share link; url (with its token) only in the answer that made it."""

    id = fields.Integer(required=True)
    url = fields.String(metadata={"description": "The link: shown once, only in the answer to POST"})
    image_id = fields.Integer(required=True, allow_none=True)
    collection_id = fields.Integer(required=True, allow_none=True)
    show_owner = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True, allow_none=True)


class ShareLinkListSchema(ma.Schema):
    """Your live share links, newest first."""

    items = fields.List(fields.Nested(ShareLinkSchema), required=True)
class WebhookRequestSchema(ma.Schema):
    """A new webhook endpoint: its URL (public addresses only) and the events it is told about."""

    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH),
                        metadata={"pattern": URL_PATTERN,
                                  "description": "http:// or https://; loopback, private, link-local and metadata "
                                                 "addresses are refused (unless WEBHOOK_ALLOW_PRIVATE=1)"})
    events = fields.List(fields.String(validate=validate.OneOf(EVENTS)), required=True,
                         validate=validate.Length(min=1, max=3), metadata={"uniqueItems": True})
    body_format = fields.String(load_default="standard", validate=validate.OneOf(BODY_FORMATS),
                                metadata={"description": "standard: the JSON body documented in the README; slack: "
                                                         '{"text"}; discord: {"content"}. Every body is signed.'})


class WebhookSchema(ma.Schema):
    """A webhook endpoint (its secret is shown only when it is made)."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    body_format = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(required=True, allow_none=True,
                                    metadata={"description": "Why it was disabled (a day of failed deliveries)"})
    created_at = fields.DateTime(required=True)


class NewWebhookSchema(WebhookSchema):
    """A webhook endpoint just made, with its signing secret: shown this once."""

    secret = fields.String(required=True, metadata={"description": "whsec_…: verify each delivery's signature "
                                                                   "with it (Standard Webhooks)"})


class WebhookPageSchema(ma.Schema):
    """Your webhook endpoints, oldest first."""

    items = fields.List(fields.Nested(WebhookSchema), required=True)


class DeliverySchema(ma.Schema):
    """One delivery of one event to one endpoint, and how its attempts went."""

    id = fields.Integer(required=True)
    event = fields.String(required=True, validate=validate.OneOf(EVENTS))
    message_id = fields.String(required=True, metadata={"description": "The webhook-id header"})
    status = fields.String(required=True, validate=validate.OneOf(["queued", "sending", "waiting", "succeeded",
                                                                   "failed"]))
    attempts = fields.Integer(required=True)
    response_status = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    last_attempt_at = fields.DateTime(required=True, allow_none=True)
    next_attempt_at = fields.DateTime(required=True, allow_none=True)


class DeliveryPageSchema(ma.Schema):
    """An endpoint's latest deliveries, newest first (at most 50)."""

    items = fields.List(fields.Nested(DeliverySchema), required=True)
