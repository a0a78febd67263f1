"""End to end in headless Chromium (tests/browser_stack.py): a template's preview as it is typed, and a 2 × 2
comparison grid that fills in live on its batch's page, is walked with the arrow keys in the larger view, and
downloads as one labelled PNG."""

import io

import pytest
from browser_stack import default_options, screenshot, sync_api, wait_for_states
from PIL import Image

from app.variations.grid_image import CELL, HEADER_HEIGHT, ROW_LABEL_WIDTH

pytestmark = pytest.mark.e2e


def squeezed(text: str) -> str:
    return " ".join(text.split())


def open_form(page, base_url, prompt):
    page.goto(base_url + "/")
    default_options(page)
    page.fill("#prompts-0", prompt)


def test_a_template_shows_its_prompts_and_price_as_it_is_typed(watched, base_url):
    page = watched.page
    open_form(page, base_url, "a lighthouse {at dawn|at dusk|in fog}, {oil painting|watercolour}")
    page.select_option("#expand", "combinatorial")
    page.select_option("#images_per_prompt", "2")
    bar = page.locator("#batch-cost")
    sync_api.expect(bar).to_contain_text(
        "Expands to 6 prompts × 2 images = 12 images × 3 credits (Stable Image Core) = 36 credits")
    sync_api.expect(page.locator(".preview-prompts li")).to_have_count(5)
    sync_api.expect(page.locator(".preview-prompts li").first).to_have_text("a lighthouse at dawn, oil painting")
    assert page.input_value("#expected-credits") == "36"
    page.locator("#variations").scroll_into_view_if_needed()
    screenshot(page, "template-preview.png", caret="initial")  # the window: the preview, and the bar below it
    page.fill("#prompts-0", "a {red|blue} __nowhere__ fox")  # a list nobody has: said in the preview
    sync_api.expect(page.locator("#variation-preview .error")).to_contain_text(
        "There is no wildcard list named __nowhere__")
    page.select_option("#expand", "none")  # back to as typed: the page prices it again itself
    page.select_option("#images_per_prompt", "1")
    sync_api.expect(bar).to_contain_text("1 image × 3 credits (Stable Image Core) = 3 credits")


def test_a_two_by_two_grid_fills_in_live_and_downloads_as_one_png(watched, base_url, tmp_path):
    page = watched.page
    open_form(page, base_url, "a lighthouse on a cliff")
    page.select_option("#grid_x_option", "model")
    page.fill("#grid_x_values", "core, sd3.5-flash")
    page.select_option("#grid_y_option", "style_preset")
    page.fill("#grid_y_values", "anime, photographic")
    sync_api.expect(page.locator("#batch-cost")).to_contain_text(
        "A 2 × 2 grid = 4 images: 2 × 3 credits (Stable Image Core) + 2 × 2.5 credits (SD 3.5 Flash) = 11 credits")
    assert page.input_value("#expected-credits") == "11"
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    grid = page.locator("table.comparison-grid")
    assert [squeezed(t) for t in grid.locator("th[scope=col]").all_inner_texts()] == ["Stable Image Core",
                                                                                       "SD 3.5 Flash"]
    assert [squeezed(t) for t in grid.locator("th[scope=row]").all_inner_texts()] == ["Anime", "Photographic"]
    url = page.url
    seen = wait_for_states(page, lambda states: states == ["succeeded"] * 4, timeout=60)
    assert page.url == url and len(seen) > 2  # filled in by the poll, card by card, without a reload
    assert any(state != "succeeded" for state in seen[0])
    assert grid.locator("td img").count() == 4
    screenshot(page, "comparison-grid.png", full_page=True, caret="initial")

    def cell_src(x, y):
        return page.get_attribute(f"[data-cell-x='{x}'][data-cell-y='{y}'] a[data-view]", "data-view-src")

    image = page.locator("#lightbox-image")
    page.click("[data-cell-x='0'][data-cell-y='0'] a[data-view]")
    sync_api.expect(image).to_have_attribute("src", cell_src(0, 0))
    for key, (x, y) in (("ArrowRight", (1, 0)), ("ArrowDown", (1, 1)), ("ArrowLeft", (0, 1)), ("ArrowUp", (0, 0))):
        page.keyboard.press(key)
        sync_api.expect(image).to_have_attribute("src", cell_src(x, y))
    page.keyboard.press("Escape")

    with page.expect_download() as download:
        page.click("#download-grid")
    path = tmp_path / "grid.png"
    download.value.save_as(path)
    png = Image.open(io.BytesIO(path.read_bytes()))
    assert png.format == "PNG" and png.size == (ROW_LABEL_WIDTH + 2 * CELL, HEADER_HEIGHT + 2 * CELL)


def test_the_wildcards_page_saves_a_list_a_template_then_reads(watched, base_url):
    page = watched.page
    page.goto(base_url + "/wildcards/")
    page.fill("#name", "seasons")
    page.fill("#values", "spring\nsummer\nautumn\nwinter")
    page.click("button:has-text('Save list')")
    sync_api.expect(page.locator("table.wildcards")).to_contain_text("__seasons__")
    screenshot(page, "wildcards.png", full_page=True, caret="initial")
    open_form(page, base_url, "a lighthouse in __seasons__")
    page.select_option("#expand", "combinatorial")
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("Expands to 4 prompts × 1 image = 4 images")
    sync_api.expect(page.locator(".preview-prompts li").first).to_have_text("a lighthouse in spring")
    page.select_option("#expand", "none")
