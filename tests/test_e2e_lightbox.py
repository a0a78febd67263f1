"""The larger view in headless Chromium (tests/browser_stack.py): opened from the gallery, the generate page and the
detail page, with the keyboard, prev/next, the URL and Back, over a dark backdrop in either scheme; the detail page's
fit (never above 100 %, the whole image in the window) / 100 %, its neighbours, its title and its style."""

import io
import re

import pytest
from browser_stack import (
    ADA,
    BOB,
    MEMBER,
    PAGE_SIZE,
    card,
    fill_prompts,
    open_page,
    screenshot,
    sign_in,
    signed_in,
    submit_prompts,
    sync_api,
    wait_for_states,
)
from PIL import Image

pytestmark = pytest.mark.e2e

PROMPTS = ["a lighthouse on a cliff at dawn", "a tram in the rain", "a quiet library with tall windows",
           "a fox asleep in the snow"]  # one more than a gallery page, so "Load more" exists


@pytest.fixture(scope="module")
def gallery(browser, base_url) -> list[int]:
    """MEMBER's four images, generated once for the module; their ids in gallery order (newest first)."""
    watched = signed_in(browser, base_url, MEMBER)
    page = watched.page
    submit_prompts(page, base_url, PROMPTS)
    wait_for_states(page, lambda states: states == ["succeeded"] * len(PROMPTS))
    page.goto(base_url + "/all/")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # infinite scroll brings the rest
    sync_api.expect(page.locator("a[data-view]")).to_have_count(len(PROMPTS))
    ids = [int(i) for i in page.eval_on_selector_all("a[data-view]", "els => els.map(e => e.dataset.view)")]
    watched.close()
    return ids


def view(page):
    return page.locator("#lightbox")


def expect_showing(page, base_url, image_id, prompt):
    """The open view shows this image, its prompt, and names it in the URL."""
    sync_api.expect(view(page)).to_be_visible()
    sync_api.expect(page.locator("#lightbox-prompt")).to_have_text(prompt)
    sync_api.expect(page.locator("#lightbox-image")).to_have_attribute(
        "src", re.compile(rf"^/images/{image_id}/file\?v=[0-9a-f]{{12}}$"))
    sync_api.expect(page).to_have_url(re.compile(rf"[?&]view={image_id}(&|$)"))


def focused(page, script="el => el.dataset.view"):
    return page.evaluate(f"() => {{ const el = document.activeElement; return ({script})(el); }}")


def newest_first(prompts):
    return list(reversed(prompts))


def test_the_gallery_opens_the_larger_view_from_the_keyboard_and_steps_with_the_arrows(
        watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    # The first page does not fill the window, so infinite scroll brings the rest at once, in place.
    sync_api.expect(page.locator(".tile")).to_have_count(len(PROMPTS))
    loads = watched.loads
    prompts = newest_first(PROMPTS)
    for _ in range(40):  # Tab through the header and the search form to the first tile
        page.keyboard.press("Tab")
        if focused(page) == str(gallery[0]):
            break
    assert focused(page) == str(gallery[0])
    page.keyboard.press("Enter")
    expect_showing(page, base_url, gallery[0], prompts[0])
    sync_api.expect(page.locator("#lightbox-position")).to_have_text(f"1 of {len(PROMPTS)}")
    screenshot(page, "lightbox.png")

    page.keyboard.press("ArrowRight")
    expect_showing(page, base_url, gallery[1], prompts[1])
    page.keyboard.press("ArrowRight")
    expect_showing(page, base_url, gallery[2], prompts[2])
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect_showing(page, base_url, gallery[0], prompts[0])
    assert page.get_attribute("[data-lightbox-step='-1']", "aria-disabled") == "true"  # nothing newer

    download = page.get_attribute("#lightbox-download", "href")
    assert re.fullmatch(rf"/images/{gallery[0]}/file\?v=[0-9a-f]{{12}}&download=1", download)
    answer = page.request.get(base_url + download)
    assert answer.status == 200 and answer.headers["content-disposition"].startswith("attachment;")
    assert answer.body() == page.request.get(base_url + page.get_attribute("#lightbox-image", "src")).body()
    assert page.get_attribute("#lightbox-reuse", "href") == f"/?reuse={gallery[0]}"

    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:  # the modal keeps focus inside it, round and round
        page.keyboard.press(key)
        assert focused(page, "el => Boolean(el.closest('#lightbox'))"), (key, focused(page, "el => el.outerHTML"))
    page.keyboard.press("Escape")
    sync_api.expect(view(page)).to_be_hidden()
    assert focused(page) == str(gallery[0])  # back on the tile that opened it
    sync_api.expect(page).to_have_url(base_url + "/all/")
    assert watched.loads == loads  # all of it without a page load


def test_back_closes_the_view_and_a_link_with_view_opens_it(watched, base_url, gallery):
    page = watched.page
    prompts = newest_first(PROMPTS)
    page.goto(base_url + "/all/")
    loads = watched.loads
    page.click(f"a[data-view='{gallery[1]}']")
    expect_showing(page, base_url, gallery[1], prompts[1])
    page.go_back()
    sync_api.expect(view(page)).to_be_hidden()
    sync_api.expect(page).to_have_url(base_url + "/all/")
    assert focused(page) == str(gallery[1])
    page.go_forward()  # and Forward opens it again
    expect_showing(page, base_url, gallery[1], prompts[1])
    page.click("[data-lightbox-close]")
    sync_api.expect(view(page)).to_be_hidden()
    sync_api.expect(page).to_have_url(base_url + "/all/")
    assert watched.loads == loads

    page.goto(f"{base_url}/all/?view={gallery[2]}")  # a shared link
    expect_showing(page, base_url, gallery[2], prompts[2])
    page.mouse.click(5, 5)  # outside the image
    sync_api.expect(view(page)).to_be_hidden()
    sync_api.expect(page).to_have_url(base_url + "/all/")

    page.goto(f"{base_url}/all/?view={gallery[-1]}")  # not on the first page: its own page shows it
    sync_api.expect(page).to_have_url(f"{base_url}/images/{gallery[-1]}?view={gallery[-1]}")
    expect_showing(page, base_url, gallery[-1], prompts[-1])


def test_back_after_an_htmx_search_closes_the_view_over_the_same_results(watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    loads = watched.loads
    page.fill("#q", "tram")
    sync_api.expect(page.locator(".tile")).to_have_count(1)
    sync_api.expect(page).to_have_url(re.compile(r"\?q=tram"))
    searched = page.url
    page.click(".tile-image")
    expect_showing(page, base_url, gallery[2], "a tram in the rain")
    sync_api.expect(page.locator("#lightbox-position")).to_have_text("1 of 1")
    assert page.locator("[data-lightbox-step]:visible").count() == 0  # one image: nothing to step to
    page.go_back()
    sync_api.expect(view(page)).to_be_hidden()
    sync_api.expect(page).to_have_url(searched)
    sync_api.expect(page.locator(".tile")).to_have_count(1)
    page.click(".tile-image")  # still works on the same (not restored) page
    expect_showing(page, base_url, gallery[2], "a tram in the rain")
    assert watched.loads == loads


def test_next_past_the_last_loaded_image_loads_more_and_goes_on(watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    page.click(f"a[data-view='{gallery[PAGE_SIZE - 1]}']")
    expect_showing(page, base_url, gallery[PAGE_SIZE - 1], newest_first(PROMPTS)[PAGE_SIZE - 1])
    page.click("[data-lightbox-step='1']")
    expect_showing(page, base_url, gallery[PAGE_SIZE], newest_first(PROMPTS)[PAGE_SIZE])
    sync_api.expect(page.locator("#lightbox-position")).to_have_text(f"{PAGE_SIZE + 1} of {len(PROMPTS)}")
    assert page.get_attribute("[data-lightbox-step='1']", "aria-disabled") == "true"  # the oldest: nothing after
    assert page.locator(".tile").count() == len(PROMPTS)  # the next page was appended under the view


def test_the_generate_page_opens_arrived_images_and_finds_the_ones_that_arrive_later(sign_in_as, base_url):
    page = sign_in_as(ADA).page  # not MEMBER: the gallery's order the other tests walk stays as it is
    prompts = ["a windmill in a field", "a paper boat on a pond", "an owl on a fence post"]
    submit_prompts(page, base_url, prompts)
    # Two worker slots: the third prompt waits, so it arrives while the view is open on the first.
    sync_api.expect(card(page, 0)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    first = card(page, 0).locator("a[data-view]")
    first_id = int(first.get_attribute("data-view"))
    first.click()
    expect_showing(page, base_url, first_id, prompts[0])
    sync_api.expect(page.locator("#lightbox-position")).to_have_text("1 of 3", timeout=30_000)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    last_id = int(card(page, 2).locator("a[data-view]").get_attribute("data-view"))
    expect_showing(page, base_url, last_id, prompts[2])
    page.keyboard.press("Escape")
    sync_api.expect(view(page)).to_be_hidden()
    # On the card of the image shown last. Waited for: the dialog is hidden, and the browser has put focus back on
    # its opener (the first card), one task before the "close" event moves it on.
    sync_api.expect(card(page, 2).locator("a[data-view]")).to_be_focused()
    assert focused(page) == str(last_id)
    assert wait_for_states(page, lambda states: states == ["succeeded"] * 3)


def test_the_detail_page_toggles_fit_and_100_percent_and_walks_the_gallery(watched, base_url, gallery):
    page = watched.page
    page.goto(f"{base_url}/images/{gallery[0]}")
    toggle = page.locator("[data-image-size]")
    frame = page.locator("#detail-image")
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "false")
    assert frame.evaluate("el => el.scrollWidth <= el.clientWidth")  # fitted into the column
    loads = watched.loads
    toggle.click()
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "true")
    image = page.locator("#detail-image img")
    assert image.evaluate("el => el.getBoundingClientRect().width === el.naturalWidth")  # 1536 px, one to one
    assert frame.evaluate("el => el.scrollWidth > el.clientWidth")  # scrolled inside the page's column
    toggle.click()
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "false")
    assert frame.evaluate("el => el.scrollWidth <= el.clientWidth")
    assert watched.loads == loads

    assert page.locator("a[rel=prev]").count() == 0  # the newest image
    page.click("a[rel=next]")
    page.wait_for_url(f"{base_url}/images/{gallery[1]}")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"{base_url}/images/{gallery[2]}")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"{base_url}/images/{gallery[1]}")
    page.click("a[rel=prev]")
    page.wait_for_url(f"{base_url}/images/{gallery[0]}")

    page.click("#detail-image a")  # the image itself opens the larger view
    expect_showing(page, base_url, gallery[0], newest_first(PROMPTS)[0])
    page.keyboard.press("Escape")
    sync_api.expect(view(page)).to_be_hidden()
    sync_api.expect(page).to_have_url(f"{base_url}/images/{gallery[0]}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_larger_view_sits_on_a_dark_backdrop_in_light_mode_too(watched, base_url, gallery, scheme):
    page = watched.page
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{base_url}/all/?view={gallery[0]}")
    sync_api.expect(view(page)).to_be_visible()
    # What is drawn in the view's corner, beside the image: the backdrop with the page showing through it.
    corner = Image.open(io.BytesIO(page.screenshot(clip={"x": 0, "y": 0, "width": 12, "height": 12}))).convert("L")
    darkest, lightest = corner.getextrema()
    assert lightest <= 40, (darkest, lightest)


TALL = "a tall tower drawn at 9:21, the model's narrowest"


@pytest.fixture(scope="module")
def tall_image(browser, base_url) -> int:
    """BOB's one 9:21 image from a 1-megapixel model: 640 × 1536, narrower than the detail page's column."""
    watched = signed_in(browser, base_url, BOB)
    page = watched.page
    fill_prompts(page, base_url, [TALL])
    page.select_option("#model", "sd3.5-flash")
    page.select_option("#aspect_ratio", "9:21")
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    sync_api.expect(card(page, 0)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    image_id = int(card(page, 0).get_attribute("id").removeprefix("generation-"))
    watched.close()
    return image_id


def drawn_and_natural(page) -> tuple[dict, int]:
    image = page.locator("#detail-image img")
    image.evaluate("el => el.decode()")
    return image.bounding_box(), image.evaluate("el => el.naturalWidth")


def test_fit_never_draws_an_image_larger_than_it_is_and_keeps_it_in_the_window(sign_in_as, base_url, tall_image):
    page = sign_in_as(BOB).page
    page.set_viewport_size({"width": 1280, "height": 2000})  # room for all 1536 px: its own size, not the column's
    page.goto(f"{base_url}/images/{tall_image}")
    drawn, natural = drawn_and_natural(page)
    column = page.locator(".detail-media").bounding_box()["width"]
    assert natural == 640 < column and drawn["width"] == natural, (drawn, natural, column)
    page.set_viewport_size({"width": 1280, "height": 900})  # shorter than the image: all of it still in view
    page.goto(f"{base_url}/images/{tall_image}")
    drawn, natural = drawn_and_natural(page)
    assert drawn["y"] + drawn["height"] <= 900 and drawn["width"] < natural
    assert abs(drawn["width"] / drawn["height"] - 640 / 1536) < 0.01  # its shape kept
    page.click("[data-image-size]")  # 100 % is still one pixel per pixel
    sync_api.expect(page.locator("[data-image-size]")).to_have_attribute("aria-pressed", "true")
    assert page.locator("#detail-image img").bounding_box()["width"] == natural


def test_the_detail_page_is_titled_by_its_prompt_and_names_no_style_as_the_form_does(sign_in_as, base_url,
                                                                                     tall_image):
    page = sign_in_as(BOB).page
    page.goto(f"{base_url}/images/{tall_image}")
    sync_api.expect(page).to_have_title(f"{TALL} · Image Generator")
    sync_api.expect(page.locator("h1")).to_have_text(TALL)
    style = page.locator(".facts dt", has_text="Style")
    sync_api.expect(style.locator("xpath=following-sibling::dd[1]")).to_have_text("None")
    page.goto(base_url + "/")
    sync_api.expect(page.locator("#style_preset option:checked")).to_have_text("None")


def test_without_javascript_tiles_are_links_and_the_detail_page_toggles_by_reloading(browser, base_url, gallery):
    watched = open_page(browser, javascript=False)
    sign_in(watched, base_url, MEMBER)
    page = watched.page
    page.goto(base_url + "/all/")
    page.click(f"a[data-view='{gallery[1]}']")
    page.wait_for_url(f"{base_url}/images/{gallery[1]}")
    page.click("[data-image-size]")
    page.wait_for_url(f"{base_url}/images/{gallery[1]}?size=actual")
    assert page.get_attribute("[data-image-size]", "aria-pressed") == "true"
    page.click("a[rel=next]")
    page.wait_for_url(f"{base_url}/images/{gallery[2]}")
    watched.close()
