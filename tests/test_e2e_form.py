"""End to end in headless Chromium (tests/browser_stack.py): the home form's images per prompt, seed lock,
Ctrl+Enter, recent prompts, sticky Generate bar, character counter, and its three defects pinned down."""

import re

import pytest
from browser_stack import (
    ADA,
    MEMBER,
    Watched,
    add_row,
    card_states,
    expect_notice_agrees,
    expect_rows,
    fill_prompts,
    prompt_values,
    screenshot,
    sign_in,
    signed_in,
    sync_api,
    wait_for_states,
)

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, base_url):
    """A signed-in page 390 px wide, checked for console errors and CSP violations after."""
    watched = Watched(browser.new_context(viewport=PHONE).new_page())
    sign_in(watched, base_url, MEMBER)
    yield watched
    watched.close()




def card_seeds(page) -> list[int]:
    texts = page.eval_on_selector_all(".card-options", "els => els.map(e => e.textContent)")
    return [int(re.search(r"seed (\d+)", text).group(1)) for text in texts]


def box(page, selector):
    return page.locator(selector).bounding_box()


def test_two_prompts_with_three_images_each_make_six_cards_and_the_cost_says_so(watched, base_url):
    page = watched.page
    fill_prompts(page, base_url, ["a lighthouse in a storm", "a quiet harbour at dawn"])
    page.select_option("#images_per_prompt", "3")
    cost = page.locator("#batch-cost")
    sync_api.expect(cost).to_contain_text(
        "2 prompts × 3 images = 6 images × 3 credits (Stable Image Core) = 18 credits")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "home.png")  # the window as a person sees it: the Generate bar at its bottom
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == (
        ["a lighthouse in a storm"] * 3 + ["a quiet harbour at dawn"] * 3)
    expect_notice_agrees(page, 6)
    wait_for_states(page, lambda states: states == ["succeeded"] * 6, timeout=60)
    assert len(set(card_seeds(page))) == 6  # unlocked: every image drew its own seed


def test_a_locked_seed_counts_up_across_a_prompts_images_and_survives_to_the_next_form(watched, base_url):
    page = watched.page
    fill_prompts(page, base_url, ["a red kite over a hill"])
    page.fill("#seed", "4000")
    page.check("#seed_locked")
    page.select_option("#images_per_prompt", "3")
    page.press("#prompts-0", "Control+Enter")
    page.wait_for_url("**/generate/*")
    wait_for_states(page, lambda states: states == ["succeeded"] * 3)
    assert card_seeds(page) == [4000, 4001, 4002]
    page.goto(base_url + "/")
    assert page.input_value("#seed") == "4000" and page.is_checked("#seed_locked")
    page.click("#roll-seed")  # rolled in place, no page load
    rolled = page.input_value("#seed")
    assert rolled != "4000" and 1 <= int(rolled) <= 4_294_967_294
    assert page.is_checked("#seed_locked")


def test_ctrl_enter_in_any_prompt_submits_the_whole_form(watched, base_url):
    page = watched.page
    fill_prompts(page, base_url, ["a paper boat", "a paper crane"])
    page.focus("#prompts-1")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/generate/*")
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == [
        "a paper boat", "a paper crane"]


def drag_taller(page, selector, by):
    """Drag the textarea's resize handle (its bottom-right corner) down by `by` pixels, as a person would."""
    area = box(page, selector)
    page.mouse.move(area["x"] + area["width"] - 3, area["y"] + area["height"] - 3)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] - 3, area["y"] + area["height"] - 3 + by, steps=5)
    page.mouse.up()
    return box(page, selector)["height"]


def test_a_dragged_textarea_keeps_its_height_through_add_and_remove_without_a_csp_violation(watched, base_url):
    page = watched.page
    page.goto(base_url + "/")
    page.fill("#prompts-0", "the first prompt, made taller")
    before = box(page, "#prompts-0")["height"]
    tall = drag_taller(page, "#prompts-0", 120)
    assert tall > before + 100
    add_row(page, 2)
    add_row(page, 3)
    assert box(page, "#prompts-0")["height"] == tall
    page.fill("#prompts-1", "the middle one")
    page.fill("#prompts-2", "the last one")
    taller = drag_taller(page, "#prompts-2", 60)
    page.click("button[name=remove_row][value='1']")
    expect_rows(page, 2)
    assert prompt_values(page) == ["the first prompt, made taller", "the last one"]
    assert box(page, "#prompts-0")["height"] == tall and box(page, "#prompts-1")["height"] == taller
    # The rest were renumbered in place: labels, names and the next row added carry on from there.
    assert page.eval_on_selector_all(".prompt-row label", "els => els.map(e => e.textContent)") == [
        "Prompt 1", "Prompt 2"]
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("2 images")
    add_row(page, 3)
    page.fill("#prompts-2", "a new third")
    assert prompt_values(page) == ["the first prompt, made taller", "the last one", "a new third"]
    assert watched.loads == 1
    assert watched.csp_violations() == []


def test_a_too_long_prompt_shows_its_error_under_it_keeping_the_row_layout_and_taking_the_focus(watched, base_url):
    page = watched.page
    fill_prompts(page, base_url, ["a short prompt", "a placeholder"])

    def layout():
        row, area, remove = box(page, ".prompt-row:nth-child(2)"), box(page, "#prompts-1"), box(
            page, ".prompt-row:nth-child(2) .remove-row")
        return {"area width": area["width"], "remove x": remove["x"] - row["x"], "remove y": remove["y"] - area["y"]}

    before = layout()
    page.fill("#prompts-1", "a very long prompt " * 530)
    with page.expect_navigation():
        page.click("#generate")
    watched.expect_status(422)
    assert layout() == before
    error, area = box(page, "#prompts-1-error"), box(page, "#prompts-1")
    assert error["y"] >= area["y"] + area["height"] and error["x"] == area["x"]
    assert error["x"] + error["width"] <= area["x"] + area["width"] + 0.5
    assert page.evaluate("document.activeElement.id") == "prompts-1"
    assert "prompts-1-error" in page.get_attribute("#prompts-1", "aria-describedby").split()
    screenshot(page, "form-error.png", clip={"x": 0, "y": error["y"] - 260, "width": 1280, "height": 360})


def test_recent_prompts_fill_the_first_empty_row_or_a_new_one(watched, base_url):
    page = watched.page
    page.goto(base_url + "/")
    page.click("#recent-prompts summary")
    newest = page.locator(".recent-prompt").first
    text = newest.get_attribute("data-prompt")
    assert text == "a paper crane"  # from the test before: the newest distinct prompt comes first
    newest.click()
    assert prompt_values(page) == ["a paper crane"]
    page.click("#recent-prompts summary")
    page.locator(".recent-prompt").nth(1).click()  # no row is empty: one is added for it
    expect_rows(page, 2)
    sync_api.expect(page.locator("#prompts-1")).to_have_value("a paper boat")
    assert page.evaluate("document.activeElement.id") == "prompts-1"
    assert watched.loads == 1


def test_the_counter_appears_near_the_limit(watched, base_url):
    page = watched.page
    page.goto(base_url + "/")
    page.fill("#prompts-0", "x" * 8_999)
    assert page.locator("#prompts-0-count").count() == 0 or not page.is_visible("#prompts-0-count")
    page.fill("#prompts-0", "x" * 9_412)
    sync_api.expect(page.locator("#prompts-0-count")).to_have_text("9,412 / 10,000")
    assert "prompts-0-count" in page.get_attribute("#prompts-0", "aria-describedby")
    page.fill("#prompts-0", "x" * 10_003)
    sync_api.expect(page.locator("#prompts-0-count")).to_have_text("10,003 / 10,000 — 3 too many")


OPTION_TEXT_FITS = """select => {
  const style = getComputedStyle(select);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = style.font;
  const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
  return [...select.options].filter(o => ctx.measureText(o.text).width > room).map(o => o.text);
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_every_model_name_shows_whole_in_its_select(browser, base_url, width):
    watched = Watched(browser.new_context(viewport={"width": width, "height": 860}).new_page())
    try:
        sign_in(watched, base_url, MEMBER)
        assert watched.page.eval_on_selector("#model", OPTION_TEXT_FITS) == []
    finally:
        watched.close()


def test_the_generate_bar_stays_in_view_on_a_phone_with_a_long_form(phone, base_url):
    page = phone.page
    fill_prompts(page, base_url, [f"prompt number {i} for a long form" for i in range(6)])
    page.evaluate("window.scrollTo(0, 0)")
    for _ in range(2):
        bar, button = box(page, ".generate-bar"), box(page, "#generate")
        assert bar["y"] + bar["height"] <= PHONE["height"] + 0.5 and bar["y"] > PHONE["height"] / 2
        assert button["y"] + button["height"] <= PHONE["height"] and button["x"] >= 0
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing sticks out
        page.evaluate("window.scrollTo(0, document.body.scrollHeight / 3)")
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("6 images")
    screenshot(page, "home-phone.png")
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    assert len(card_states(page)) == 6


def test_on_a_phone_a_new_prompt_box_opens_focused_above_the_generate_bar(phone, base_url):
    page = phone.page
    page.goto(base_url + "/")
    for count in range(2, 7):
        # Scrolled as a person would to reach the button: it sits just above the bar, where the new box appears.
        add, bar = box(page, "#add-row"), box(page, ".generate-bar")
        page.evaluate(f"window.scrollBy(0, {add['y'] + add['height'] - bar['y'] + 4})")
        page.click("#add-row")
        expect_rows(page, count)
        new = page.locator(f"#prompts-{count - 1}")
        sync_api.expect(new).to_be_focused()
        area, bar = new.bounding_box(), box(page, ".generate-bar")
        assert area["y"] >= 0 and area["y"] + area["height"] <= bar["y"], (count, area, bar)  # all of it in view
    page.keyboard.type("typed where it can be seen")
    assert prompt_values(page)[-1] == "typed where it can be seen"


def test_reusing_an_image_that_is_not_yours_or_is_gone_says_so_and_the_form_still_works(sign_in_as, base_url):
    ada = sign_in_as(ADA).page
    fill_prompts(ada, base_url, ["ada's own lighthouse"])
    ada.click("#generate")
    ada.wait_for_url("**/generate/*")
    theirs = int(ada.locator(".card").first.get_attribute("id").removeprefix("generation-"))
    page = sign_in_as(MEMBER).page
    for image_id in (theirs, 2_147_483_000):  # someone else's reads exactly like one deleted
        page.goto(f"{base_url}/?reuse={image_id}")
        sync_api.expect(page.locator(".flash-warning")).to_have_text(
            f"Image {image_id} was not found (it may have been deleted), so nothing was filled in.")
        assert prompt_values(page) == [""]
    page.fill("#prompts-0", "a prompt of my own")
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == ["a prompt of my own"]


def test_without_javascript_random_lock_recent_prompts_and_enter_still_work(browser, base_url):
    watched = signed_in(browser, base_url, javascript=False)
    page = watched.page
    try:
        page.goto(base_url + "/")
        page.fill("#prompts-0", "a tin robot")
        page.fill("#seed", "77")
        page.check("#seed_locked")
        with page.expect_navigation():
            page.click("#roll-seed")  # the server rolls it, keeping everything typed
        assert page.input_value("#seed") != "77" and page.is_checked("#seed_locked")
        assert prompt_values(page) == ["a tin robot"]
        page.click("#recent-prompts summary")
        with page.expect_navigation():
            page.locator(".recent-prompt").first.click()
        assert "?reuse=" in page.url and prompt_values(page) != [""]
        page.fill("#seed", "123")
        with page.expect_navigation():
            page.press("#seed", "Enter")  # Enter in a one-line field generates; it never removes a row
        assert "/generate/" in page.url
    finally:
        watched.close()
