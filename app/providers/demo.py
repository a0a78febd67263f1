"""Offline demo provider: draws a labelled placeholder locally so the app runs without an API key."""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
import time

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

from app.providers.base import EditRequest, GeneratedImage, GenerationRequest
from app.providers.operations import OPERATIONS
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


def _label(image: Image.Image, text: str) -> Image.Image:
    """The demo's black strip along the bottom, saying what made the image."""
    draw = ImageDraw.Draw(image)
    strip = max(24, image.height // 24)
    draw.rectangle([0, image.height - strip, image.width, image.height], fill=(0, 0, 0, 255))
    draw.text((12, image.height - strip + strip // 5), text, fill=(255, 214, 0, 255),
              font=ImageFont.load_default(size=max(12, strip * 3 // 5)))
    return image


def _redrawn(image: Image.Image, prompt: str, amount: float) -> Image.Image:
    """The image pulled towards a placeholder of the prompt by `amount` (0 keeps it, 1 replaces it)."""
    digest = hashlib.sha256(prompt.encode()).digest()
    tint = Image.new("RGB", image.size, _colour(digest, 0))
    return Image.blend(image.convert("RGB"), tint, max(0.0, min(1.0, amount)) * 0.7)


def _masked(image: Image.Image, mask: bytes | None, fill: Image.Image) -> Image.Image:
    """The painted (white) area of the mask replaced by `fill`; without a mask, the image's transparent area."""
    if mask is not None:
        area = Image.open(io.BytesIO(mask)).convert("L")
    else:
        area = ImageOps.invert(image.getchannel("A")) if "A" in image.getbands() else Image.new("L", image.size, 0)
    result = image.convert("RGB")
    result.paste(fill, (0, 0), area)
    return result


def _upscaled(image: Image.Image, operation: str) -> Image.Image:
    """Fast and creative: 4x (long side at most 4,096 px); conservative: to about 4 MP."""
    width, height = image.size
    scale = (4 * 1_048_576 / (width * height)) ** 0.5 if operation == "upscale-conservative" else min(
        4.0, 4096 / max(width, height))
    return image.convert("RGB").resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                       Image.Resampling.BICUBIC)


def _outpainted(image: Image.Image, params: dict[str, object]) -> Image.Image:
    """The canvas grown by left/right/up/down, the new area filled with the image's own edges, blurred."""
    left, right, up, down = (int(params.get(side, 0) or 0) for side in ("left", "right", "up", "down"))  # type: ignore[call-overload]
    source = image.convert("RGB")
    canvas = source.resize((source.width + left + right, source.height + up + down)).filter(
        ImageFilter.GaussianBlur(24))
    canvas.paste(source, (left, up))
    return canvas


def _without_background(image: Image.Image) -> Image.Image:
    """Pixels close to the corners' colour made transparent: the demo's idea of a subject."""
    rgb = image.convert("RGB")
    corner = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    distance = ImageChops.difference(rgb, corner).convert("L")
    alpha = distance.point(lambda value: 255 if value > 24 else 0)
    result = rgb.convert("RGBA")
    result.putalpha(alpha)
    return result


def render_demo_edit(request: EditRequest) -> Image.Image:
    """Do an operation locally, roughly as the API would: resize, redraw the mask's area, grow the canvas, …"""
    op, params = request.operation, request.params
    image = Image.open(io.BytesIO(request.image))
    image.load()
    digest = hashlib.sha256(request.prompt.encode()).digest()
    if op.startswith("upscale-"):
        return _upscaled(image, op)
    if op == "outpaint":
        return _outpainted(image, params)
    if op == "remove-background":
        return _without_background(image)
    if op == "inpaint":
        return _masked(image, request.mask, Image.new("RGB", image.size, _colour(digest, 3)))
    if op == "erase":
        return _masked(image, request.mask, image.convert("RGB").filter(ImageFilter.GaussianBlur(16)))
    if op == "replace-background-and-relight":
        subject = _without_background(image)
        background = Image.new("RGBA", image.size, _colour(hashlib.sha256(
            str(params.get("background_prompt", "")).encode()).digest(), 0) + (255,))
        return Image.alpha_composite(background, subject).convert("RGB")
    if op == "search-and-recolor":
        return ImageOps.colorize(image.convert("L"), (0, 0, 0), _colour(digest, 6))
    strength = float(params.get("strength", params.get("control_strength", 0.5)) or 0.5)  # type: ignore[arg-type]
    return _redrawn(image, request.prompt, strength)


class DemoProvider:
    """Stands in for the API when no key is configured; its images are always labelled as demo."""

    name = "demo"
    supports_async = False  # every operation is done at once, locally

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

    def edit(self, request: EditRequest) -> GeneratedImage:
        """Do the operation locally with Pillow, labelled as the demo's."""
        if self.delay:
            time.sleep(self.delay)
        seed = request.options.seed or random.randint(1, MAX_SEED)
        image = _label(render_demo_edit(request), f"OFFLINE DEMO - {OPERATIONS[request.operation].label}")
        fmt = request.options.output_format
        if fmt == "jpeg" and image.mode != "RGB":
            image = image.convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format=PIL_FORMATS.get(fmt, "PNG"), **({"compress_level": 1} if fmt == "png" else {}))
        return GeneratedImage(content=buffer.getvalue(), mime_type="image/" + fmt, seed=seed, finish_reason="SUCCESS")

    def start_edit(self, request: EditRequest) -> str:
        """Never called: the demo does async operations at once (supports_async is False)."""
        raise NotImplementedError

    def edit_result(self, result_id: str) -> GeneratedImage | None:
        """Never called (see start_edit)."""
        raise NotImplementedError
