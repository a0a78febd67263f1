"""What each Stability endpoint that starts from an image takes, limits and costs: the one table the forms, the API
schema, the limits checked before a charge, the client's request and the demo provider read."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.providers.options import MODELS

GENERATE = "generate"  # a text-to-image row: no source image
UPLOAD = "upload"  # a picture of the user's own: made by nobody, costs nothing
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # the whole multipart body, for every endpoint (413 above)
MIN_SIDE = 64
# The largest result an operation may make: a fast upscale's 4x of 1 MP (also what an outpaint may grow to).
RESULT_MAX_PIXELS = 4_096 * 4_096
# Models that take an image to start from: SD 3.5 (mode=image-to-image) and Ultra; Core has no such mode.
IMAGE_TO_IMAGE_MODELS = tuple(model for model in MODELS if model != "core")
LIGHT_DIRECTIONS = ("above", "below", "left", "right")


@dataclass(frozen=True)
class Field:
    """One field a person (or the API body) gives an operation, named as the Stability API names it."""

    name: str
    label: str
    kind: str  # "text", "float", "int", "choice", "bool", "mask" (a painted PNG) or "image" (another image's id)
    required: bool = False
    default: object = None
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Limits:
    """What the endpoint accepts of the source image; None: no such limit."""

    min_side: int = MIN_SIDE
    max_side: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    # The shorter side to the longer at most 1:2.5 (the "aspect rule"), for the source and, for outpaint, the result.
    aspect_rule: bool = False


@dataclass(frozen=True)
class Operation:
    """One operation of the app: an endpoint, what it takes and what it costs."""

    name: str
    label: str
    endpoint: str
    credits: float | None  # None: the model's price (image-to-image)
    fields: tuple[Field, ...] = ()
    limits: Limits = field(default_factory=Limits)
    is_async: bool = False
    image_field: str = "image"  # the file part the source image goes in
    takes_seed: bool = True
    takes_style_preset: bool = False
    takes_negative_prompt: bool = False
    output_formats: tuple[str, ...] = ("png", "jpeg", "webp")
    several: bool = False  # offered for several selected images at once
    # A source over the limits is shrunk to fit by the job (an upscale enlarges it anyway), not refused.
    shrink_to_fit: bool = False

    def endpoint_for(self, model: str | None = None) -> str:
        """The path this operation posts to: image-to-image goes to Ultra's own endpoint for Ultra."""
        if self.credits is None and model in MODELS and not MODELS[model].takes_cfg_scale:
            return MODELS[model].endpoint
        return self.endpoint

    def price(self, model: str | None = None) -> float:
        """Credits one result costs."""
        if self.credits is not None:
            return self.credits
        return MODELS[model or "core"].credits


def _prompt(required: bool = True) -> Field:
    """The prompt field, which most operations require."""
    return Field("prompt", "Prompt", "text", required=required, max_length=10_000)


def _creativity(default: float, bounds: tuple[float, float]) -> Field:
    """How far an upscale may invent detail."""
    return Field("creativity", "Creativity", "float", default=default, bounds=bounds)


GROW_MASK = Field("grow_mask", "Grow mask (px)", "int", default=5, bounds=(0, 100))
MASK = Field("mask", "Mask", "mask", hint="Paint the area to change; white is changed, black kept")
EDIT_LIMITS = Limits(min_pixels=4_096, max_pixels=9_437_184)
EDIT_LIMITS_ASPECT = Limits(min_pixels=4_096, max_pixels=9_437_184, aspect_rule=True)
CONTROL_LIMITS = Limits(max_pixels=9_437_184, aspect_rule=True)

OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("image-to-image", "Image to image", "/v2beta/stable-image/generate/sd3", None,
              (_prompt(), Field("strength", "Strength", "float", required=True, default=0.6, bounds=(0.0, 1.0),
                                hint="0 keeps the image, 1 ignores it"),
               Field("model", "Model", "choice", default="sd3.5-large", choices=IMAGE_TO_IMAGE_MODELS)),
              takes_negative_prompt=True, several=True),
    Operation("upscale-fast", "Upscale (fast, 4×)", "/v2beta/stable-image/upscale/fast", 2,
              limits=Limits(min_side=32, max_side=1_536, min_pixels=1_024, max_pixels=1_048_576), takes_seed=False,
              several=True, shrink_to_fit=True),
    Operation("upscale-conservative", "Upscale (conservative, 4 MP)", "/v2beta/stable-image/upscale/conservative",
              40, (_prompt(), _creativity(0.35, (0.2, 0.5))), limits=Limits(max_pixels=9_437_184),
              takes_negative_prompt=True),
    Operation("upscale-creative", "Upscale (creative, up to 4K)", "/v2beta/stable-image/upscale/creative", 60,
              (_prompt(), _creativity(0.3, (0.1, 0.5))), limits=Limits(max_pixels=1_048_576), is_async=True,
              takes_style_preset=True, takes_negative_prompt=True, shrink_to_fit=True),
    Operation("inpaint", "Inpaint", "/v2beta/stable-image/edit/inpaint", 5,
              (_prompt(), MASK, GROW_MASK), limits=EDIT_LIMITS, takes_style_preset=True,
              takes_negative_prompt=True),
    Operation("outpaint", "Outpaint", "/v2beta/stable-image/edit/outpaint", 4,
              (*(Field(side, side.capitalize() + " (px)", "int", default=0, bounds=(0, 2_000))
                 for side in ("left", "right", "up", "down")),
               _prompt(required=False), Field("creativity", "Creativity", "float", default=0.5, bounds=(0.0, 1.0))),
              limits=EDIT_LIMITS_ASPECT, takes_style_preset=True),
    Operation("erase", "Erase", "/v2beta/stable-image/edit/erase", 5, (MASK, GROW_MASK), limits=EDIT_LIMITS),
    Operation("search-and-replace", "Search and replace", "/v2beta/stable-image/edit/search-and-replace", 5,
              (Field("search_prompt", "Find", "text", required=True, max_length=10_000), _prompt(),
               Field("grow_mask", "Grow mask (px)", "int", default=3, bounds=(0, 20))),
              limits=EDIT_LIMITS_ASPECT, takes_style_preset=True, takes_negative_prompt=True),
    Operation("search-and-recolor", "Search and recolor", "/v2beta/stable-image/edit/search-and-recolor", 5,
              (Field("select_prompt", "Select", "text", required=True, max_length=10_000), _prompt(),
               Field("grow_mask", "Grow mask (px)", "int", default=3, bounds=(0, 20))),
              limits=EDIT_LIMITS, takes_style_preset=True, takes_negative_prompt=True),
    Operation("remove-background", "Remove background", "/v2beta/stable-image/edit/remove-background", 5,
              limits=Limits(max_pixels=4_194_304), takes_seed=False, output_formats=("png", "webp"), several=True),
    Operation("sketch", "Sketch to image", "/v2beta/stable-image/control/sketch", 5,
              (_prompt(), Field("control_strength", "Control strength", "float", default=0.7, bounds=(0.0, 1.0))),
              limits=CONTROL_LIMITS, takes_style_preset=True, takes_negative_prompt=True),
    Operation("structure", "Structure", "/v2beta/stable-image/control/structure", 5,
              (_prompt(), Field("control_strength", "Control strength", "float", default=0.7, bounds=(0.0, 1.0))),
              limits=CONTROL_LIMITS, takes_style_preset=True, takes_negative_prompt=True),
    Operation("style-guide", "Style guide", "/v2beta/stable-image/control/style", 5,
              (_prompt(), Field("fidelity", "Fidelity", "float", default=0.5, bounds=(0.0, 1.0))),
              limits=CONTROL_LIMITS, takes_style_preset=True, takes_negative_prompt=True),
    Operation("replace-background-and-relight", "Replace background and relight",
              "/v2beta/stable-image/edit/replace-background-and-relight", 8,
              (Field("background_prompt", "Background", "text", required=True, max_length=10_000),
               Field("foreground_prompt", "Subject", "text", max_length=10_000),
               Field("light_source_direction", "Light from", "choice", choices=LIGHT_DIRECTIONS),
               Field("light_source_strength", "Light strength", "float", default=0.3, bounds=(0.0, 1.0)),
               Field("preserve_original_subject", "Keep the subject", "float", default=0.6, bounds=(0.0, 1.0)),
               Field("original_background_depth", "Background depth", "float", default=0.5, bounds=(0.0, 1.0)),
               Field("keep_original_background", "Keep the background", "bool", default=False)),
              limits=Limits(max_pixels=9_437_184, aspect_rule=True), is_async=True, image_field="subject_image"),
    Operation("style-transfer", "Style transfer", "/v2beta/stable-image/control/style-transfer", 8,
              (Field("style_image", "Style image", "image", required=True, hint="Another image of yours"),
               _prompt(required=False),
               Field("style_strength", "Style strength", "float", default=1.0, bounds=(0.0, 1.0)),
               Field("composition_fidelity", "Composition fidelity", "float", default=0.9, bounds=(0.0, 1.0)),
               Field("change_strength", "Change strength", "float", default=0.9, bounds=(0.1, 1.0))),
              limits=Limits(max_side=16_383), image_field="init_image", takes_negative_prompt=True),
)}
CONFIRM_AT_CREDITS = 40  # operations costing this much or more ask for a confirmation


def operation_label(name: str) -> str:
    """An operation's name for people: 'Generated' and 'Uploaded' for the two that start from no image."""
    if name == GENERATE:
        return "Generated"
    if name == UPLOAD:
        return "Uploaded"
    return OPERATIONS[name].label if name in OPERATIONS else name
