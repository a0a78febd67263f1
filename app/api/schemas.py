"""The API's request and response shapes (marshmallow), from which flask-smorest writes the OpenAPI document.

Request bodies are checked twice over by one set of rules: marshmallow checks the JSON types, then the home
form (app/prompts/submission.py) checks the values, with its own messages. The enums, ranges and lengths the
document states come from the same constants the form's fields are built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, replace
from typing import Any, get_args

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from app.gallery.pages import GALLERY_STATUSES
from app.models import MAX_ID, Status
from app.prompts.forms import MAX_IMAGES_PER_PROMPT
from app.prompts.submission import SUBMITTED_FIELDS, SubmissionInvalid, validate_submission
from app.providers.options import MAX_PROMPT_LENGTH, MODELS, OPTION_FIELDS, OPTION_TYPES
from app.text.storable import UNSAFE
from app.webhooks.addresses import MAX_URL_LENGTH, URL_PATTERN
from app.webhooks.bodies import BODY_FORMATS, EVENTS

MAX_PAGE_SIZE = 100
# Field metadata read by app/api/openapi.py: limits that are settings, and JSON Schema apispec has no name for.
SETTING_LIMITS = "setting_limits"
EXTRA_JSON_SCHEMA = "json_schema"
CURSOR_PATTERN = r"^[0-9]{1,17}-[0-9]{1,10}$"
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

    webhook_url = fields.String(allow_none=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH), metadata={
        "pattern": URL_PATTERN,
        "description": "Also tell this URL (public addresses only) when the batch completes: one batch.completed "
                       "delivery, signed with the secret the answer's webhook_secret gives once"})
    expected_credits = StrictFloat(allow_nan=False, allow_none=True, validate=validate.Range(min=0), metadata={
        "description": "The price you were shown (prompts × images_per_prompt × the model's credits per image): if "
                       "the batch costs anything else, the answer is 409 and nothing is created or charged. Omit it "
                       "to accept the current price."})

    @ma.post_load
    def checked_by_the_form(self, data: dict[str, Any], **_kwargs: Any) -> Any:  # noqa: ANN401
        """Hand the values to the home form's rules; its messages become the per-field errors."""
        options = {name: data.get(name) for name in SUBMITTED_FIELDS}
        try:
            submission = validate_submission(data["prompts"], options, current_app.config["MAX_PROMPTS_PER_BATCH"])
        except SubmissionInvalid as exc:
            raise ma.ValidationError(exc.fields) from None  # type: ignore[arg-type]
        return replace(submission, expected_credits=data.get("expected_credits"), webhook_url=data.get("webhook_url"))


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
    owner = fields.Integer(validate=validate.Range(1, MAX_ID), metadata={"description": "Admins only: one user's."})


class LinksSchema(ma.Schema):
    """Where an image can be fetched (with the same token)."""

    file_url = fields.String(required=True)
    thumb_url = fields.String(required=True)
    download_url = fields.String(required=True)


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
    file_url = fields.String(required=True)
    thumb_url = fields.String(required=True)
    download_url = fields.String(required=True)


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


# GET /api/export answers a ZIP, not JSON: the document says so in its own terms.
EXPORT_ZIP = {"type": "string", "format": "binary",
              "description": "A ZIP: images/<id>-<words of the prompt>.<ext> for every image, then manifest.json"}


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
