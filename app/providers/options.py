"""What the Stability API accepts: models and their prices, aspect ratios, styles, formats (pure data)."""

from __future__ import annotations

from dataclasses import dataclass


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


def model_label(model_id: str) -> str:
    """A model's name for people; unknown ids are shown as they are."""
    model = MODELS.get(model_id)
    return model.label if model else model_id
