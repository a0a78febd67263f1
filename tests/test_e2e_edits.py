"""Taking an image further in headless Chromium (tests/browser_stack.py, the fake Stability API behind it): from a
finished image, Vary, Upscale (fast), Inpaint with a painted mask, Outpaint by 256 px left, Remove background, and an
upload followed by image-to-image each make a new card that arrives live, with "Made from" on its detail page; and
two ticked gallery images upscaled as one batch."""

import io
import re

import pytest
from browser_stack import (
    MEMBER,
    card,
    generation_id,
    screenshot,
    signed_in,
    submit_prompts,
    sync_api,
    wait_for_states,
)
from PIL import Image

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished(browser, base_url) -> int:
    """MEMBER's one finished image, generated once for the module; its id."""
    watched = signed_in(browser, base_url, MEMBER)
    page = watched.page
    submit_prompts(page, base_url, ["a red lighthouse on a green cliff"])
    wait_for_states(page, lambda states: states == ["succeeded"])
    image_id = generation_id(card(page, 0))
    watched.close()
    return image_id


def arrives_live(page, source_id: int) -> int:
    """On the new batch's page: its one card goes from waiting to finished without a reload; then its detail page
    says what it was made from. Returns the new image's id."""
    page.wait_for_url(re.compile(r".*/generate/\d+$"))
    seen = wait_for_states(page, lambda states: states == ["succeeded"], timeout=60)
    assert seen[0] != ["succeeded"], seen  # it was seen waiting first: it arrived live
    result_id = generation_id(card(page, 0))
    page.goto(page.url.split("/generate/")[0] + f"/images/{result_id}")
    sync_api.expect(page.locator("#made-from")).to_have_attribute("href", f"/images/{source_id}")
    return result_id


def open_operation(page, base_url, image_id: int, label: str) -> None:
    """From the detail page, Edit ▸ and the operation's entry."""
    page.goto(f"{base_url}/images/{image_id}")
    page.click("#detail-edit summary")
    page.click(f"#detail-edit .edit-list a:has-text('{label}')")
    page.wait_for_url(re.compile(r".*/edit/"))


def test_vary_from_the_detail_page_is_one_click(watched, base_url, finished):
    page = watched.page
    page.goto(f"{base_url}/images/{finished}")
    page.click("#detail-edit summary")
    sync_api.expect(page.locator("#detail-edit .edit-list")).to_be_visible()
    screenshot(page, "edit-menu.png")
    page.click("#detail-edit button:has-text('Vary')")
    result = arrives_live(page, finished)
    assert "Image to image" in page.locator(".facts").inner_text()
    assert result != finished


def test_upscale_from_the_larger_view(watched, base_url, finished):
    page = watched.page
    page.goto(f"{base_url}/all/")
    page.click(f"a[data-view='{finished}']")
    sync_api.expect(page.locator("#lightbox")).to_be_visible()
    sync_api.expect(page.locator("#lightbox-edit")).to_be_visible()
    page.click("#lightbox-edit button:has-text('Upscale')")
    arrives_live(page, finished)
    assert "Upscale (fast, 4×)" in page.locator(".facts").inner_text()


def paint(page, strokes):
    """Drag the mouse over the mask canvas along each stroke, given as fractions of its box."""
    box = page.locator("#mask-canvas").bounding_box()
    for stroke in strokes:
        (x, y), *rest = stroke
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


def test_inpaint_with_a_painted_mask(watched, base_url, finished):
    page = watched.page
    open_operation(page, base_url, finished, "Inpaint")
    prompt = page.locator("#edit-prompt")
    assert prompt.input_value() == "a red lighthouse on a green cliff"  # pre-filled from the image
    page.click("#edit-submit")  # nothing painted yet: refused next to the painter, the prompt kept
    watched.expect_status(422)
    sync_api.expect(page.locator("#edit-error")).to_contain_text("Paint")
    prompt.fill("a small red boat on the sea")
    paint(page, [[(0.3, 0.6), (0.5, 0.7), (0.7, 0.6)], [(0.2, 0.2), (0.25, 0.25)]])
    page.click("[data-mask-action='undo']")
    paint(page, [[(0.4, 0.4), (0.6, 0.45)]])
    assert page.locator("#mask-painter").get_attribute("data-strokes") == "2"
    screenshot(page, "mask-painter.png")
    page.click("#edit-submit")
    arrives_live(page, finished)


def test_outpaint_by_256_px_left(watched, base_url, finished):
    page = watched.page
    page.goto(f"{base_url}/images/{finished}")
    image = page.locator("#detail-image img")
    width, height = int(image.get_attribute("width")), int(image.get_attribute("height"))
    open_operation(page, base_url, finished, "Outpaint")
    page.fill("#edit-left", "256")
    sync_api.expect(page.locator("#outpaint-size")).to_contain_text("after growing left 256 px")
    page.click("#edit-submit")
    arrives_live(page, finished)
    sync_api.expect(page.locator("#detail-size")).to_have_text(f"{width + 256} × {height}")


def test_remove_background(watched, base_url, finished):
    page = watched.page
    open_operation(page, base_url, finished, "Remove background")
    page.click("#edit-submit")
    arrives_live(page, finished)


def picture() -> bytes:
    image = Image.new("RGB", (640, 480), (30, 90, 160))
    image.paste((240, 200, 40), (200, 150, 440, 330))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_upload_then_image_to_image_and_its_made_from_chain(watched, base_url):
    page = watched.page
    page.goto(f"{base_url}/all/")
    page.set_input_files("#upload-file", files=[{"name": "mine.png", "mimeType": "image/png", "buffer": picture()}])
    page.wait_for_url(re.compile(r".*/images/\d+$"))
    upload_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("h1").inner_text() == "Uploaded"
    open_operation(page, base_url, upload_id, "Image to image")
    page.fill("#edit-prompt", "a yellow window in a blue wall, oil painting")
    page.select_option("#edit-model", "ultra")  # the price follows the model, before anything is sent
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("= 8 credits")
    page.select_option("#edit-model", "sd3.5-large")
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("= 6.5 credits")
    assert page.locator("#edit-prompt").input_value() == "a yellow window in a blue wall, oil painting"
    page.click("#edit-submit")
    variation = arrives_live(page, upload_id)
    # One more step, so the chain reads upload → image to image → upscale.
    page.click("#detail-edit button:has-text('Upscale')")
    upscale = arrives_live(page, variation)
    page.goto(f"{base_url}/images/{variation}")
    sync_api.expect(page.locator("#made-from-this a")).to_have_attribute("href", f"/images/{upscale}")
    page.locator(".lineage").scroll_into_view_if_needed()
    screenshot(page, "made-from.png")


def test_a_refused_upload_says_why_by_the_picker(watched, base_url):
    page = watched.page
    page.goto(f"{base_url}/")
    page.set_input_files("#upload-file", files=[{"name": "photo.png", "mimeType": "image/png",
                                                 "buffer": b"MZ\x90\x00 not a picture at all"}])
    watched.expect_status(422)
    sync_api.expect(page.locator("#upload-error")).to_have_text("This file is not a PNG, JPEG or WebP image.")


def test_several_selected_images_upscaled_as_one_batch(watched, base_url, finished):
    page = watched.page
    page.goto(f"{base_url}/all/")
    chosen = [generation_id(page.locator(".tile").nth(i)) for i in range(2)]
    for image_id in chosen:
        page.check(f"#generation-{image_id} .tile-select")
    page.click("#bulk-form button:has-text('Upscale (fast)')")
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("2 images × 2 credits")
    page.click("#edit-submit")
    page.wait_for_url(re.compile(r".*/generate/\d+$"))
    seen = wait_for_states(page, lambda states: states == ["succeeded"] * 2, timeout=90)
    assert seen[0] != ["succeeded"] * 2, seen
    made = [generation_id(card(page, i)) for i in range(2)]
    sources = []
    for result_id in made:
        page.goto(f"{base_url}/images/{result_id}")
        sources.append(int(page.locator("#made-from").get_attribute("href").rsplit("/", 1)[1]))
    assert sorted(sources) == sorted(chosen)
