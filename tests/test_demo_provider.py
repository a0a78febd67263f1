"""The offline demo provider and the image checks every provider's output goes through."""

import io

import pytest
from PIL import Image

from app.imaging.decoding import decode_image
from app.imaging.errors import ImageError
from app.providers.base import GenerationRequest
from app.providers.demo import DemoProvider, render_demo_image
from app.providers.options import GenerationOptions


def test_the_same_prompt_and_seed_give_the_same_image():
    assert render_demo_image("a cat", 42) == render_demo_image("a cat", 42)
    assert render_demo_image("a cat", 42) != render_demo_image("a cat", 43)
    assert render_demo_image("a cat", 42) != render_demo_image("a dog", 42)


@pytest.mark.parametrize(("ratio", "size"), [("1:1", (512, 512)), ("16:9", (672, 384)), ("9:21", (320, 768))])
def test_demo_images_follow_the_aspect_ratio(ratio, size):
    info = decode_image(render_demo_image("x", 1, ratio)).info
    assert (info.width, info.height) == size


@pytest.mark.parametrize(("fmt", "mime"), [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_demo_provider_answers_in_the_requested_format_with_a_seed(fmt, mime):
    image = DemoProvider().generate(GenerationRequest(prompt="x", options=GenerationOptions(output_format=fmt)))
    assert image.mime_type == mime == decode_image(image.read()).info.mime_type
    assert 1 <= image.seed <= 4_294_967_294 and image.finish_reason == "SUCCESS"


def test_a_requested_seed_is_kept():
    assert DemoProvider().generate(GenerationRequest(prompt="x", options=GenerationOptions(seed=7))).seed == 7


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_bytes_that_are_not_an_image_are_refused(data):
    with pytest.raises(ImageError, match="not a valid image"):
        decode_image(data)


def test_an_image_in_another_format_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "GIF")
    with pytest.raises(ImageError):
        decode_image(buffer.getvalue())
