"""Offline demo provider: draws a labelled placeholder locally so the app runs without an API key."""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
import time

from PIL import Image, ImageDraw, ImageFont

from app.providers.base import GeneratedImage, GenerationRequest
from app.providers.options import MAX_SEED, SIZES_1MP

LABEL = "OFFLINE DEMO - placeholder, not generated art"
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def _colour(digest: bytes, offset: int) -> tuple[int, int, int]:
    """Pick a pleasant mid-tone colour from three digest bytes."""
    return tuple(64 + digest[offset + i] % 160 for i in range(3))  # type: ignore[return-value]


def render_demo_image(prompt: str, seed: int, aspect_ratio: str = "1:1", output_format: str = "png") -> bytes:
    """Render a deterministic placeholder from prompt and seed: a gradient, shapes, the prompt and a label."""
    width, height = (side // 2 for side in SIZES_1MP.get(aspect_ratio, SIZES_1MP["1:1"]))
    digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
    top, bottom = _colour(digest, 0), _colour(digest, 3)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    rng = random.Random(digest)
    for _ in range(6):
        x, y, r = rng.randrange(width), rng.randrange(height), rng.randrange(20, max(21, width // 4))
        draw.ellipse([x - r, y - r, x + r, y + r], outline=_colour(digest, rng.randrange(20)), width=4)
    font = ImageFont.load_default(size=max(14, width // 28))
    text = "\n".join(textwrap.wrap(prompt, width=32)[:8])
    draw.multiline_text((24, 24), text, fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    draw.rectangle([0, height - 40, width, height], fill=(0, 0, 0))
    draw.text((12, height - 32), LABEL, fill=(255, 214, 0), font=ImageFont.load_default(size=18))
    buffer = io.BytesIO()
    image.save(buffer, format=PIL_FORMATS.get(output_format, "PNG"))
    return buffer.getvalue()


class DemoProvider:
    """Stands in for the API when no key is configured; its images are always labelled as demo."""

    name = "demo"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def generate(self, request: GenerationRequest) -> GeneratedImage:
        """Wait a little, like the real API would, then draw the placeholder."""
        options = request.options
        seed = options.seed or random.randint(1, MAX_SEED)
        if self.delay:
            # 0.5x to 1.5x of the delay, so a batch's images arrive one by one as real ones do.
            time.sleep(self.delay * (0.5 + hashlib.sha256(request.prompt.encode()).digest()[0] / 255))
        data = render_demo_image(request.prompt, seed, options.aspect_ratio, options.output_format)
        mime = "image/" + options.output_format
        return GeneratedImage(content=data, mime_type=mime, seed=seed, finish_reason="SUCCESS")
