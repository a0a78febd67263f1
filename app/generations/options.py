"""The options of one image, in the one shape the form, the row, the provider and the file metadata share."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from app.providers.options import DEFAULT_MODEL


@dataclass(frozen=True)
class GenerationOptions:
    """What an image is made with besides its prompt, named as the Stability API names it; defaults live here only."""

    model: str = DEFAULT_MODEL
    aspect_ratio: str = "1:1"
    output_format: str = "png"
    style_preset: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None  # None: the API picks one per image
    cfg_scale: float | None = None  # sent to SD 3.5 models only

    def as_dict(self) -> dict[str, object]:
        """The options as plain values (JSON, form data)."""
        return asdict(self)


DEFAULT_OPTIONS = GenerationOptions()
