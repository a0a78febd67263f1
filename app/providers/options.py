"""What the Stability API accepts (models and their prices, aspect ratios, styles, formats, sizes), and the
options of one image in the one shape the form, the row, the API schema, the provider and the metadata share."""

from __future__ import annotations

from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, get_type_hints


@dataclass(frozen=True)
class Model:
    """A generation model, the endpoint that serves it and its price per image."""

    id: str
    label: str
    credits: float
    endpoint: str
    default_cfg_scale: float | None = None  # only SD 3.5 models take cfg_scale

    @property
    def takes_cfg_scale(self) -> bool:
        """True for SD 3.5 models, the only ones with a cfg_scale field."""
        return self.default_cfg_scale is not None


SD3_ENDPOINT = "/v2beta/stable-image/generate/sd3"
MODELS = {
    model.id: model
    for model in (
        Model("core", "Stable Image Core", 3, "/v2beta/stable-image/generate/core"),
        Model("ultra", "Stable Image Ultra", 8, "/v2beta/stable-image/generate/ultra"),
        Model("sd3.5-large", "SD 3.5 Large", 6.5, SD3_ENDPOINT, 4),
        Model("sd3.5-large-turbo", "SD 3.5 Large Turbo", 4, SD3_ENDPOINT, 1),
        Model("sd3.5-medium", "SD 3.5 Medium", 3.5, SD3_ENDPOINT, 4),
        Model("sd3.5-flash", "SD 3.5 Flash", 2.5, SD3_ENDPOINT, 1),
    )
}
DEFAULT_MODEL = "core"
ASPECT_RATIOS = ("1:1", "16:9", "21:9", "3:2", "5:4", "2:3", "4:5", "9:16", "9:21")
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic",
    "pixel-art", "tile-texture",
)
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MAX_SEED = 4_294_967_294  # 4,294,967,295 is one too many on v2beta
CFG_SCALE_RANGE = (1.0, 10.0)
USD_PER_CREDIT = 0.01
# Pixel sizes the API documents for Ultra and SD 3.5 (1 MP); Core answers at 1.5 MP.
SIZES_1MP = {
    "1:1": (1024, 1024), "5:4": (1088, 896), "3:2": (1216, 832), "16:9": (1344, 768),
    "21:9": (1536, 640), "4:5": (896, 1088), "2:3": (832, 1216), "9:16": (768, 1344),
    "9:21": (640, 1536),
}


def model_label(model_id: str) -> str:
    """A model's name for people; unknown ids are shown as they are."""
    model = MODELS.get(model_id)
    return model.label if model else model_id


def style_label(style: str | None) -> str:
    """A style preset's name for people: 'comic-book' is 'Comic book', and no style is 'None'."""
    return style.replace("-", " ").capitalize() if style else "None"

MAX_PROMPT_LENGTH = 10_000  # the API's limit for a prompt or negative prompt, counted after trimming
SEED_RANGE = (0, MAX_SEED)


def option(default: object = None, *, infotext: str | None = None, column: str | None = None,
           choices: tuple[str, ...] | None = None, bounds: tuple[float, float] | None = None,
           max_length: int | None = None, doc: str | None = None) -> Any:  # noqa: ANN401
    """Declare one option: its default and what every other place derives from it.

    `infotext`: its key in the settings line an image file carries (AUTOMATIC1111's), None if not written there;
    `column`: the Generation column that stores it, when not named like the option; `choices`, `bounds` and
    `max_length`: the values the API accepts, as the API schema states them; `doc`: a line for the API's document.
    """
    facts = {"infotext": infotext, "column": column, "choices": choices, "bounds": bounds,
             "max_length": max_length, "doc": doc}
    return field(default=default, metadata=facts)


@dataclass(frozen=True)
class GenerationOptions:
    """What an image is made with besides its prompt, named as the Stability API names it, in the order the form
    shows them: the one declaration the row, the form, the API schema, the request and the file metadata follow."""

    model: str = option(DEFAULT_MODEL, infotext="Model", choices=tuple(MODELS))
    aspect_ratio: str = option("1:1", infotext="Aspect ratio", choices=ASPECT_RATIOS)
    style_preset: str | None = option(infotext="Style", choices=STYLE_PRESETS)
    output_format: str = option("png", choices=OUTPUT_FORMATS)
    # None: the API picks one per image. The file records the seed used instead (ImageParameters.seed).
    seed: int | None = option(column="requested_seed", bounds=SEED_RANGE, doc="0 or null: random per image")
    cfg_scale: float | None = option(infotext="CFG scale", bounds=CFG_SCALE_RANGE, doc="SD 3.5 models only")
    # Written on a line of its own in the file's metadata, as AUTOMATIC1111 does.
    negative_prompt: str | None = option(max_length=MAX_PROMPT_LENGTH)

    def as_dict(self) -> dict[str, object]:
        """The options as plain values (JSON, form data)."""
        return asdict(self)


OPTION_FIELDS: tuple[Field, ...] = fields(GenerationOptions)
OPTION_NAMES = tuple(f.name for f in OPTION_FIELDS)
# Each option's type: str, int or float, or `X | None` where the option may be left empty.
OPTION_TYPES: dict[str, Any] = get_type_hints(GenerationOptions)
DEFAULT_OPTIONS = GenerationOptions()


def column_of(name: str) -> str:
    """The Generation column that stores an option."""
    return GenerationOptions.__dataclass_fields__[name].metadata["column"] or name
