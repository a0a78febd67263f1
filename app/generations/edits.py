"""Images made from images: an operation's price, the checks of its fields and of the API's input limits before any
credit is spent, and the batch of one generation per source image.

Two one-click shortcuts are not operations of their own: "vary" is image-to-image with the source's prompt, a
random seed and strength 0.6, and "upscale" is upscale-fast (see SHORTCUTS).

An upscale whose source is over the endpoint's limits (Core's 1.5 MP output, sides up to 2,304 px) is not
refused: the job shrinks it to fit first (`Operation.shrink_to_fit`, `fitted_size`), since an upscale enlarges it
anyway. Every other operation refuses a source outside its limits, with the reason. The 10 MiB request body is
the job's concern too: a large source is re-encoded (WebP or JPEG) before it is sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.generations import lifecycle, statements
from app.generations.lifecycle import NewImage
from app.imaging.errors import ImageError
from app.imaging.masks import mask_facts
from app.media_store import orphans
from app.media_store.base import MediaStore, new_file_name
from app.models import MAX_ID, Batch, Generation, User
from app.providers.operations import (
    MAX_REQUEST_BYTES,
    OPERATIONS,
    RESULT_MAX_PIXELS,
    Field,
    Limits,
    Operation,
)
from app.providers.options import DEFAULT_OPTIONS, MAX_PROMPT_LENGTH, MAX_SEED, STYLE_PRESETS, GenerationOptions
from app.services import services
from app.text.storable import first_unsafe_character, unsafe_character_message

VARY = "vary"
VARY_STRENGTH = 0.6
UPSCALE = "upscale"
# One-click names the UI and the API may use, and the operation each stands for.
SHORTCUTS = {VARY: "image-to-image", UPSCALE: "upscale-fast"}
MAX_SOURCES = 100  # images one request may start from (a gallery selection)
# Fields every operation may take besides its own, as the Stability API names them (when the operation takes them).
COMMON_FIELDS = ("seed", "style_preset", "negative_prompt", "output_format", "cfg_scale")
# The aspect rule: the shorter side to the longer at least 1:2.5.
MAX_ASPECT = 2.5
MASK_MAX_BYTES = MAX_REQUEST_BYTES // 2  # the image needs room in the same body


class EditRefused(Exception):
    """An operation that cannot be sent as asked; `field` names the form/API field the message belongs next to
    (None: the image itself)."""

    def __init__(self, field: str | None, message: str, source_id: int | None = None) -> None:
        super().__init__(message)
        self.field, self.message = field, message
        self.source_id = source_id  # which of several source images it is about (set by create_edit_batch)


class SourceNotFound(LookupError):
    """A source image id that is not one of the owner's images with a file."""

    def __init__(self, source_id: int) -> None:
        super().__init__(f"image {source_id} not found")
        self.source_id = source_id


def operation_of(name: str) -> Operation:
    """The operation by its name (a shortcut's name included), or EditRefused naming the field."""
    operation = OPERATIONS.get(SHORTCUTS.get(name, name))
    if operation is None:
        raise EditRefused("operation", f"Unknown operation {name!r}: choose one of {', '.join(OPERATIONS)}.")
    return operation


def shortcut_params(name: str, source: Generation) -> dict[str, object]:
    """The fields a one-click shortcut sends: vary keeps the source's prompt, not its seed, at strength 0.6."""
    if name == VARY:
        return {"prompt": source.prompt, "strength": VARY_STRENGTH}
    return {}


def price_of_edit(operation: str, params: dict) -> float:
    """Credits one result of this operation costs (image-to-image: its model's price)."""
    op = operation_of(operation)
    model = params.get("model") if op.credits is None else None
    return op.price(model if isinstance(model, str) and model in op_model_choices(op) else _model_default(op))


def op_model_choices(op: Operation) -> tuple[str, ...]:
    """The models an operation lets the person choose (image-to-image only)."""
    for spec in op.fields:
        if spec.name == "model":
            return spec.choices or ()
    return ()


def _model_default(op: Operation) -> str | None:
    """The model an operation uses when none is chosen."""
    for spec in op.fields:
        if spec.name == "model":
            return str(spec.default)
    return None


# --- checking one source --------------------------------------------------------------------------

def check_edit(source: Generation, operation: str, params: dict, mask_png: bytes | None) -> dict:
    """Check the fields (required, bounds, choices) and the API's input limits against the source; return the
    fields normalised (defaults filled in, text trimmed), or raise EditRefused."""
    op = operation_of(operation)
    if not source.has_image or not source.width or not source.height:
        raise EditRefused(None, "This image has no finished file to start from.")
    normalised = _normalised_fields(op, params)
    _check_source(op, source.width, source.height)
    _check_mask(op, source, mask_png)
    if op.name == "outpaint":
        _check_outpaint(source.width, source.height, normalised)
    if op.name == "style-transfer":
        _check_style_image(source, normalised["style_image"])
    return normalised


def _normalised_fields(op: Operation, params: dict) -> dict[str, object]:
    """Every field the operation takes, checked and with its default; unknown fields refused."""
    own = {spec.name: spec for spec in op.fields if spec.kind != "mask"}
    common = _common_fields(op)
    for name in params:
        if name not in own and name not in common:
            raise EditRefused(name, f"{op.label} takes no field {name!r}.")
    values: dict[str, object] = {}
    for spec in (*own.values(), *common.values()):
        value = _checked(spec, params.get(spec.name))
        if value is not None:
            values[spec.name] = value
    if "cfg_scale" in values and values.get("model") not in ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium",
                                                               "sd3.5-flash"):
        raise EditRefused("cfg_scale", "Only SD 3.5 models take a CFG scale.")
    return values


def _common_fields(op: Operation) -> dict[str, Field]:
    """The generate fields this operation takes too, declared as its own fields are."""
    common = {"output_format": Field("output_format", "Format", "choice", default="png", choices=op.output_formats)}
    if op.takes_seed:
        common["seed"] = Field("seed", "Seed", "int", bounds=(0, MAX_SEED))
    if op.takes_style_preset:
        common["style_preset"] = Field("style_preset", "Style", "choice", choices=STYLE_PRESETS)
    if op.takes_negative_prompt:
        common["negative_prompt"] = Field("negative_prompt", "Negative prompt", "text", max_length=MAX_PROMPT_LENGTH)
    if op.credits is None:
        common["cfg_scale"] = Field("cfg_scale", "CFG scale", "float", bounds=(1.0, 10.0))
    return common


def _checked(spec: Field, value: object) -> object:
    """One field's value, normalised: None or "" mean the default (or absent); EditRefused when it is wrong."""
    if isinstance(value, str) and spec.kind != "text":
        value = value.strip() or None
    if value is None or value == "":
        if spec.required and spec.default is None:
            raise EditRefused(spec.name, f"{spec.label} is required.")
        return spec.default
    checker = _CHECKERS[spec.kind]
    return checker(spec, value)


def _text(spec: Field, value: object) -> str | None:
    """Text: trimmed, storable, not too long; blank is absent (or refused when required)."""
    if not isinstance(value, str):
        raise EditRefused(spec.name, f"{spec.label} must be text.")
    text = value.strip()
    if not text:
        if spec.required:
            raise EditRefused(spec.name, f"{spec.label} is required.")
        return None
    unsafe = first_unsafe_character(text)
    if unsafe:
        raise EditRefused(spec.name, unsafe_character_message(*unsafe))
    if spec.max_length and len(text) > spec.max_length:
        raise EditRefused(spec.name, f"{spec.label} is {len(text):,} characters; at most {spec.max_length:,}.")
    return text


def _number(spec: Field, value: object) -> float | int:
    """A number within the field's bounds (an int field takes whole numbers only)."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or (spec.kind == "int" and not number.is_integer()):
        kind = "a whole number" if spec.kind == "int" else "a number"
        raise EditRefused(spec.name, f"{spec.label} must be {kind}.")
    if spec.bounds and not spec.bounds[0] <= number <= spec.bounds[1]:
        low, high = spec.bounds
        raise EditRefused(spec.name, f"{spec.label} must be between {low:g} and {high:g}.")
    return int(number) if spec.kind == "int" else number


def _choice(spec: Field, value: object) -> str:
    """One of the field's choices."""
    if value not in (spec.choices or ()):
        raise EditRefused(spec.name, f"{spec.label} must be one of {', '.join(spec.choices or ())}.")
    return str(value)


def _flag(spec: Field, value: object) -> bool:
    """A yes or no (a form sends text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "on", "1", "yes", "false", "off", "0", "no"):
        return value.lower() in ("true", "on", "1", "yes")
    raise EditRefused(spec.name, f"{spec.label} must be true or false.")


def _image_id(spec: Field, value: object) -> int:
    """Another image's id (its ownership is checked against the source's)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() or not (
            0 < int(value) <= MAX_ID):
        raise EditRefused(spec.name, f"{spec.label}: choose another image of yours.")
    return int(value)


_CHECKERS: dict[str, Callable[[Field, object], object]] = {
    "text": _text, "float": _number, "int": _number, "choice": _choice, "bool": _flag, "image": _image_id}


def fitted_size(op: Operation, width: int, height: int) -> tuple[int, int]:
    """The size the source is sent at: its own, or for an upscale shrunk (same shape) to the endpoint's limits."""
    if not op.shrink_to_fit:
        return width, height
    limits, scale = op.limits, 1.0
    if limits.max_pixels and width * height > limits.max_pixels:
        scale = math.sqrt(limits.max_pixels / (width * height))
    if limits.max_side and max(width, height) * scale > limits.max_side:
        scale = limits.max_side / max(width, height)
    if scale >= 1.0:
        return width, height
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def _check_source(op: Operation, width: int, height: int) -> None:
    """The endpoint's input limits, on the size the source is sent at."""
    width, height = fitted_size(op, width, height)
    limits: Limits = op.limits
    size = f"{width:,} × {height:,}"
    if min(width, height) < limits.min_side:
        raise EditRefused(None, f"{op.label} needs every side at least {limits.min_side} px; this image is {size}.")
    if limits.max_side and max(width, height) > limits.max_side:
        raise EditRefused(None, f"{op.label} takes sides up to {limits.max_side:,} px; this image is {size}.")
    pixels = width * height
    if limits.min_pixels and pixels < limits.min_pixels:
        raise EditRefused(None, f"{op.label} needs at least {limits.min_pixels:,} pixels; this image has "
                                f"{pixels:,} ({size}).")
    if limits.max_pixels and pixels > limits.max_pixels:
        raise EditRefused(None, f"{op.label} takes at most {_megapixels(limits.max_pixels)}; this image is "
                                f"{_megapixels(pixels)} ({size}).")
    if limits.aspect_rule and max(width, height) > MAX_ASPECT * min(width, height):
        raise EditRefused(None, f"{op.label} takes shapes from 1:2.5 to 2.5:1; this image is {size}.")


def _megapixels(pixels: int) -> str:
    """A pixel count for people: 1,048,576 is '1 MP' (2^20 pixels to the megapixel, as the API counts)."""
    return f"{pixels / 1_048_576:.2g} MP"


def _check_mask(op: Operation, source: Generation, mask_png: bytes | None) -> None:
    """A painted mask where the operation takes one: a PNG of the image's own size with something painted."""
    takes_mask = any(spec.kind == "mask" for spec in op.fields)
    if not takes_mask:
        if mask_png:
            raise EditRefused("mask", f"{op.label} takes no mask.")
        return
    if not mask_png:
        raise EditRefused("mask", "Paint the area to change on the image first.")
    if len(mask_png) > MASK_MAX_BYTES:
        raise EditRefused("mask", f"The mask is over {MASK_MAX_BYTES // (1024 * 1024)} MiB; paint it again.")
    try:
        mask = mask_facts(mask_png, (source.width, source.height))
    except ImageError:
        raise EditRefused("mask", "The mask is not a readable PNG; paint it again.") from None
    if not mask.is_png:
        raise EditRefused("mask", "The mask must be a PNG.")
    if (mask.width, mask.height) != (source.width, source.height):
        raise EditRefused("mask", f"The mask is {mask.width:,} × {mask.height:,}; it must be the image's "
                                  f"size, {source.width:,} × {source.height:,}.")
    if not mask.painted:
        raise EditRefused("mask", "The mask is empty: paint the area to change.")


def _check_outpaint(width: int, height: int, values: dict[str, object]) -> None:
    """Outpaint grows at least one side, and the grown image keeps the aspect rule and the result's size limit."""
    left, right, up, down = (int(values.get(side, 0) or 0) for side in ("left", "right", "up", "down"))
    if not any((left, right, up, down)):
        raise EditRefused("left", "Give at least one side (left, right, up or down) some pixels to grow.")
    new_width, new_height = width + left + right, height + up + down
    wider_field = "left" if left >= right else "right"
    taller_field = "up" if up >= down else "down"
    size = f"{new_width:,} × {new_height:,}"
    if new_width > MAX_ASPECT * new_height:
        raise EditRefused(wider_field, f"The result would be {size}, wider than 2.5:1; grow it less sideways.")
    if new_height > MAX_ASPECT * new_width:
        raise EditRefused(taller_field, f"The result would be {size}, taller than 1:2.5; grow it less up or down.")
    if new_width * new_height > RESULT_MAX_PIXELS:
        field = wider_field if left + right >= up + down else taller_field
        raise EditRefused(field, f"The result would be {size}, over {_megapixels(RESULT_MAX_PIXELS)}.")


def _check_style_image(source: Generation, style_id: int) -> None:
    """The style image is another finished image of the same owner, within style transfer's limits."""
    style = db.session.get(Generation, style_id)
    if style is None or style.owner_id != source.owner_id or not style.has_image or not style.width:
        raise EditRefused("style_image", "Choose another image of yours as the style.")
    if min(style.width, style.height or 0) < 64 or max(style.width, style.height or 0) > 16_383:
        raise EditRefused("style_image", "The style image must have every side from 64 to 16,383 px.")


@dataclass(frozen=True)
class SourceFile:
    """Where a source image's file is, for the job that sends it."""

    storage: str
    file_name: str
    mime_type: str
    width: int
    height: int


def source_file(source_id: int | None) -> SourceFile | None:
    """The file of the image an operation starts from (or its style image); None if it was deleted meanwhile."""
    if source_id is None:
        return None
    row = statements.read(sa.select(Generation.storage, Generation.file_name, Generation.mime_type,
                                    Generation.width, Generation.height).where(Generation.id == int(source_id))).first()
    if row is None or row.file_name is None:
        return None
    return SourceFile(row.storage, row.file_name, row.mime_type or "image/png", row.width or 0, row.height or 0)


# --- the batch --------------------------------------------------------------------------------------

def create_edit_batch(owner: User, source_ids: list[int], operation: str, params: dict,
                      mask_png: bytes | None = None, expected_credits: float | None = None,
                      before_commit: Callable[[Batch], None] | None = None) -> Batch:
    """One batch with one queued generation per source image, reserved and enqueued as lifecycle.create_batch does.

    Every source is checked first: one refused (EditRefused) or not the owner's (SourceNotFound) and nothing is
    written or charged. OverAllowance and PriceChanged come from the shared reservation.
    """
    op = operation_of(operation)
    sources = _sources(owner, source_ids)
    if len(sources) > 1 and not op.several:
        raise EditRefused("operation", f"{op.label} works on one image at a time.")
    checked = [(source, _checked_source(source, operation, params, mask_png, len(sources) > 1))
               for source in sources]
    price = price_of_edit(op.name, checked[0][1])
    lifecycle.check_price(price * len(checked), expected_credits)
    store = services().stores.current
    masks = [_put_mask(store, mask_png) if mask_png else None for _ in checked]
    try:
        return lifecycle.create_images(owner, [
            NewImage(str(values.get("prompt") or ""), _options_of(op, source, values), price,
                     {"operation": op.name, "source_id": source.id, "operation_params": _operation_params(op, values),
                      "mask_name": mask, "storage": store.name})
            for (source, values), mask in zip(checked, masks, strict=True)
        ], before_commit=before_commit, expected_credits=expected_credits)
    except BaseException:
        orphans.discard(services().stores, services().redis, store.name, masks)
        raise


def _checked_source(source: Generation, operation: str, params: dict, mask_png: bytes | None,
                    several: bool) -> dict:
    """check_edit with a shortcut's fields filled in (vary: the source's own prompt); a refusal names the source
    when there are several."""
    given = {name: value for name, value in params.items() if value is not None and value != ""}
    try:
        return check_edit(source, operation, {**shortcut_params(operation, source), **given}, mask_png)
    except EditRefused as exc:
        if several:
            raise EditRefused(exc.field, exc.message, source.id) from None
        raise


def _sources(owner: User, source_ids: list[int]) -> list[Generation]:
    """The owner's source images in the order given (each once); SourceNotFound for the first that is not."""
    ids = list(dict.fromkeys(int(source_id) for source_id in source_ids))
    if not ids:
        raise EditRefused("image_ids", "Choose at least one image to start from.")
    if len(ids) > MAX_SOURCES:
        raise EditRefused("image_ids", f"At most {MAX_SOURCES} images at once.")
    found = {g.id: g for g in db.session.scalars(
        sa.select(Generation).where(Generation.id.in_(ids), Generation.owner_id == owner.id))}
    for source_id in ids:
        if source_id not in found or not found[source_id].has_image:
            raise SourceNotFound(source_id)
    return [found[source_id] for source_id in ids]


def _options_of(op: Operation, source: Generation, values: dict[str, object]) -> GenerationOptions:
    """The row's option columns: the model for image-to-image (else the operation's name), and the generate
    fields the operation takes."""
    model = str(values.get("model") or op.name)
    return GenerationOptions(
        model=model, aspect_ratio=source.aspect_ratio or DEFAULT_OPTIONS.aspect_ratio,
        style_preset=values.get("style_preset"),  # type: ignore[arg-type]
        output_format=str(values.get("output_format") or "png"),
        seed=values.get("seed") or None,  # type: ignore[arg-type]
        cfg_scale=values.get("cfg_scale"),  # type: ignore[arg-type]
        negative_prompt=values.get("negative_prompt"))  # type: ignore[arg-type]


def _operation_params(op: Operation, values: dict[str, object]) -> dict[str, object]:
    """The operation's own fields (the generate fields live in the option columns, the prompt in its own)."""
    return {name: value for name, value in values.items()
            if name not in COMMON_FIELDS and name not in ("prompt", "model")}


def _put_mask(store: MediaStore, mask_png: bytes) -> str:
    """Store the painted mask before the rows name it (a failed batch discards it)."""
    name = new_file_name("image/png")
    store.put(name, mask_png, "image/png")
    return name
