"""End to end in headless Chromium against the real stack: gunicorn, `python worker.py`, Redis, a database
and the fake Stability server with a latency, so cards change state over time as they would in use."""

import os
import shutil
import time
from pathlib import Path

import pytest
import requests
from conftest import private_redis, throwaway_database
from fake_stability import FakeStability
from live_stack import live_stack

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
KEY = "e2e-key"
LATENCY = 2.5  # longer than the 2 s poll, so every card is seen generating
CONCURRENCY = 2
PAGE_SIZE = 3

if not shutil.which(CHROMIUM) and not os.environ.get("E2E_REQUIRED"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); set E2E_REQUIRED=1 to fail instead",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """The whole stack on its own database and Redis, so unit tests' queues never mix with it."""
    tmp = tmp_path_factory.mktemp("e2e")
    with FakeStability(api_key=KEY, latency=LATENCY) as fake, \
            throwaway_database(tmp) as database_url, private_redis(tmp / "redis") as redis_url:
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "STABILITY_API_KEY": KEY,
               "STABILITY_API_BASE_URL": fake.base_url, "SECRET_KEY": "e2e-secret", "MEDIA_ROOT": str(tmp / "media"),
               "GALLERY_PAGE_SIZE": str(PAGE_SIZE), "MAX_PROMPTS_PER_BATCH": "10",
               # Two quick attempts, so "[e500x2]" fails once as a whole and then succeeds on a retry.
               "STABILITY_MAX_ATTEMPTS": "2", "STABILITY_RETRY_BASE_DELAY": "0.2"}
        with live_stack(env, tmp, concurrency=CONCURRENCY) as url:
            yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Watched:
    """A page with what a person would not see but a test must: console errors, CSP violations, loads."""

    def __init__(self, page):
        self.page = page
        self.console_errors: list[str] = []
        self.loads = 0
        page.on("console", lambda message: self.console_errors.append(message.text)
                if message.type == "error" else None)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.on("load", lambda: setattr(self, "loads", self.loads + 1))
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation',"
            " e => (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));")

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__csp || []")


def open_page(browser, javascript=True):
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 860})
    return Watched(context.new_page())


@pytest.fixture
def watched(browser):
    watched = open_page(browser)
    yield watched
    assert watched.console_errors == []
    assert watched.csp_violations() == []
    watched.page.context.close()


def add_row(page, expected_rows):
    page.click("button[name=add_row]")
    expect_rows(page, expected_rows)


def expect_rows(page, count):
    # Locator waits, not wait_for_function: a string predicate is an eval, which our CSP refuses.
    sync_api.expect(page.locator("textarea.prompt-input")).to_have_count(count)


def prompt_values(page) -> list[str]:
    return page.eval_on_selector_all("textarea.prompt-input", "els => els.map(e => e.value)")


def card_states(page) -> list[str]:
    # data-status, not the class list: htmx adds its own classes while it swaps.
    return page.eval_on_selector_all(".card", "els => els.map(e => e.dataset.status)")


def wait_for_states(page, done, timeout=40.0, on_change=None) -> list[list[str]]:
    """Sample the cards until done(states) holds; return every distinct state list seen."""
    seen: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = card_states(page)
        if not seen or seen[-1] != states:
            seen.append(states)
            if on_change:
                on_change(states)
        if done(states):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"cards never reached the expected states; seen {seen}")


def submit_three_prompts_with_a_removal(page, base_url, prompts):
    """Add three rows, remove the middle one, add another, and submit."""
    first, middle, third, fourth = prompts
    page.goto(base_url + "/")
    page.fill("#prompts-0", first)
    add_row(page, 2)
    page.fill("#prompts-1", middle)
    add_row(page, 3)
    page.fill("#prompts-2", third)
    page.click("button[name=remove_row][value='1']")
    expect_rows(page, 2)
    add_row(page, 3)
    page.fill("#prompts-2", fourth)
    assert prompt_values(page) == [first, third, fourth]


def test_rows_added_and_removed_in_place_generate_exactly_the_remaining_prompts_live(watched, base_url):
    page = watched.page
    prompts = ["a red fox in fresh snow", "MIDDLE prompt that is removed", "a blue whale at dusk",
               "a green owl on a branch"]
    submit_three_prompts_with_a_removal(page, base_url, prompts)
    assert watched.loads == 1  # every row edit happened in place
    page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")
    loads_after_submit = watched.loads
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == [
        prompts[0], prompts[2], prompts[3]]

    shot = {"taken": False}

    def screenshot_mid_batch(states):
        if not shot["taken"] and "succeeded" in states and any(s in ("queued", "running") for s in states):
            page.screenshot(path=str(SCREENSHOTS / "generate.png"))
            shot["taken"] = True

    seen = wait_for_states(page, lambda states: states == ["succeeded"] * 3, on_change=screenshot_mid_batch)
    for index in range(3):
        history = [states[index] for states in seen]
        compact = [s for i, s in enumerate(history) if i == 0 or history[i - 1] != s]
        assert compact in (["queued", "running", "succeeded"], ["running", "succeeded"]), (index, seen)
    assert any(states[2] == "queued" for states in seen)  # two workers: the third prompt waited its turn
    assert watched.loads == loads_after_submit  # images arrived without a navigation
    # The last image may still be downloading at the moment its card is swapped in.
    deadline = time.monotonic() + 15
    while True:
        sizes = page.eval_on_selector_all(".card img", "els => els.map(e => [e.complete, e.naturalWidth])")
        if sizes == [[True, 1536]] * 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sizes == [[True, 1536]] * 3
    assert page.inner_text(".batch-progress") .strip().startswith("3 of 3 finished")
    assert page.get_attribute("#batch-progress", "hx-trigger") is None  # polling stopped


def test_a_refused_prompt_shows_its_reason_while_the_others_finish(watched, base_url):
    page = watched.page
    page.goto(base_url + "/")
    page.fill("#prompts-0", "a calm lake [moderate]")
    add_row(page, 2)
    page.fill("#prompts-1", "a mountain village")
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")
    wait_for_states(page, lambda states: states == ["failed", "succeeded"])
    assert "Blocked by content moderation (not charged)" in page.inner_text(".card.status-failed")
    assert page.locator(".card.status-succeeded img").count() == 1


def test_validation_messages_sit_next_to_their_fields_and_keep_the_text(browser, base_url):
    watched = open_page(browser)
    page = watched.page
    page.goto(base_url + "/")
    with page.expect_navigation():
        page.click("button[name=generate]")
    assert "Write at least one prompt." in page.inner_text("#prompt-rows")

    long_prompt = "a very long prompt " * 530  # over 10,000 characters
    page.fill("#prompts-0", "a short prompt that is fine")
    add_row(page, 2)
    page.fill("#prompts-1", long_prompt)
    with page.expect_navigation():
        page.click("button[name=generate]")
    error = page.locator("#prompts-1-error")
    assert "the limit is 10000" in error.inner_text()
    assert page.get_attribute("#prompts-1", "aria-describedby") == "prompts-1-error"
    assert prompt_values(page) == ["a short prompt that is fine", long_prompt.strip()]
    # The browser logs the 422 answers themselves; nothing else may appear.
    assert [e for e in watched.console_errors if "422" not in e] == []
    assert watched.csp_violations() == []
    watched.page.context.close()


def test_the_gallery_lists_newest_first_and_loads_more_in_place(watched, base_url):
    page = watched.page
    page.goto(base_url + "/all/")
    first_page = page.eval_on_selector_all(".tile-prompt", "els => els.map(e => e.textContent)")
    assert len(first_page) == PAGE_SIZE
    assert first_page[0] == "a mountain village"  # the most recent success
    page.screenshot(path=str(SCREENSHOTS / "gallery.png"))
    loads = watched.loads
    page.click(".load-more a")
    sync_api.expect(page.locator(".tile").nth(PAGE_SIZE)).to_be_visible()
    both_pages = page.eval_on_selector_all(".tile-prompt", "els => els.map(e => e.textContent)")
    assert both_pages[:PAGE_SIZE] == first_page
    assert "a red fox in fresh snow" in both_pages[PAGE_SIZE:]
    assert len(set(both_pages)) == len(both_pages)
    assert watched.loads == loads


def test_without_javascript_rows_and_results_work_through_plain_posts_and_reloads(browser, base_url):
    watched = open_page(browser, javascript=False)
    page = watched.page
    prompts = ["no-js first", "no-js middle", "no-js third", "no-js fourth"]
    submit_three_prompts_with_a_removal(page, base_url, prompts)
    assert watched.loads > 1  # each row edit was a full page
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")
    deadline = time.monotonic() + 40
    while card_states(page) != ["succeeded"] * 3:
        assert time.monotonic() < deadline, card_states(page)
        page.wait_for_event("load", timeout=10_000)  # the <noscript> refresh
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == [
        "no-js first", "no-js third", "no-js fourth"]
    watched.page.context.close()


@pytest.mark.parametrize("path", ["/", "/all/", "/generate/1"])
def test_pages_send_a_strict_csp_and_break_none_of_it(watched, base_url, path):
    response = watched.page.goto(base_url + path)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    watched.page.wait_for_timeout(300)
    assert requests.get(base_url + path, timeout=5).headers["Content-Security-Policy"] == policy


def test_the_cost_updates_as_prompts_and_the_model_change(watched, base_url):
    page = watched.page
    page.goto(base_url + "/")
    cost = page.locator("#batch-cost")
    sync_api.expect(cost).to_contain_text("Write a prompt")
    page.fill("#prompts-0", "a lighthouse")
    sync_api.expect(cost).to_contain_text("1 image × 3 credits (Stable Image Core) = 3 credits")
    add_row(page, 2)
    page.fill("#prompts-1", "a harbour")
    page.select_option("#model", "ultra")
    sync_api.expect(cost).to_contain_text("2 images × 8 credits (Stable Image Ultra) = 16 credits (about $0.16)")
    sync_api.expect(page.locator("#balance")).to_contain_text("credits")
    assert watched.loads == 1


def submit_prompts(page, base_url, prompts):
    """Fill one row per prompt through 'Add prompt' and press Generate."""
    page.goto(base_url + "/")
    for index, prompt in enumerate(prompts):
        if index:
            add_row(page, index + 1)
        page.fill(f"#prompts-{index}", prompt)
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")


def card(page, position):
    return page.locator(".card").nth(position)


def test_cancel_one_card_retry_a_failed_one_and_watch_the_batch_finish_in_place(watched, base_url):
    page = watched.page
    submit_prompts(page, base_url, ["an island [e500x2]", "a forest", "a desert", "a glacier to cancel"])
    loads = watched.loads
    sync_api.expect(card(page, 3)).to_have_attribute("data-status", "queued")
    sync_api.expect(card(page, 3)).to_contain_text("ahead")
    card(page, 3).get_by_role("button", name="Cancel").click()
    sync_api.expect(card(page, 3)).to_have_attribute("data-status", "canceled")
    sync_api.expect(card(page, 0)).to_have_attribute("data-status", "failed", timeout=30_000)
    sync_api.expect(card(page, 0)).to_contain_text("server error (500)")
    card(page, 0).get_by_role("button", name="Retry").click()
    sync_api.expect(card(page, 0)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    sync_api.expect(card(page, 0)).to_contain_text("Earlier attempts (1)")
    sync_api.expect(page.locator(".progress-text")).to_contain_text("All done", timeout=30_000)
    sync_api.expect(page.locator(".progress-text")).to_contain_text("4 of 4 finished, 1 without an image")
    assert card_states(page) == ["succeeded", "succeeded", "succeeded", "canceled"]
    assert watched.loads == loads  # every action swapped in place


def test_find_open_reuse_and_delete_an_image_from_the_gallery(watched, base_url):
    page = watched.page
    submit_prompts(page, base_url, ["a zeppelin over the harbour"])
    sync_api.expect(card(page, 0)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    page.goto(base_url + "/all/")
    loads = watched.loads
    page.fill("#q", "zeppelin")
    sync_api.expect(page.locator(".tile")).to_have_count(1)
    assert watched.loads == loads and "q=zeppelin" in page.url  # searched in place, and the URL can be shared
    page.click(".tile-image")
    page.wait_for_url("**/images/*")
    sync_api.expect(page.locator("#prompt-text")).to_have_value("a zeppelin over the harbour")
    detail_url = page.url
    page.click("text=Reuse prompt and settings")
    page.wait_for_url("**/?reuse=*")
    assert prompt_values(page) == ["a zeppelin over the harbour"]
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("1 image")
    page.goto(detail_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Delete")
    page.wait_for_url("**/all/")
    sync_api.expect(page.locator(".flashes")).to_contain_text("Image deleted.")
    assert requests.get(detail_url, timeout=5).status_code == 404


def test_without_javascript_cancel_retry_search_and_delete_work_through_plain_forms(browser, base_url):
    watched = open_page(browser, javascript=False)
    page = watched.page
    page.goto(base_url + "/")
    page.fill("#prompts-0", "a volcano [moderate]")
    page.click("button[name=add_row]")
    page.fill("#prompts-1", "a quiet meadow for no-js")
    page.click("button[name=add_row]")
    page.fill("#prompts-2", "a canyon to cancel")
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")
    card(page, 2).get_by_role("button", name="Cancel").click()
    sync_api.expect(card(page, 2)).to_have_attribute("data-status", "canceled")
    deadline = time.monotonic() + 40
    while card_states(page)[:2] != ["failed", "succeeded"]:
        assert time.monotonic() < deadline, card_states(page)
        page.wait_for_event("load", timeout=10_000)
    card(page, 0).get_by_role("button", name="Retry").click()
    page.wait_for_load_state()
    assert "Queued again." in page.inner_text(".flashes")
    page.goto(base_url + "/all/")
    page.fill("#q", "meadow for no-js")
    page.click("button:has-text('Search')")
    page.wait_for_url("**q=meadow*")
    sync_api.expect(page.locator(".tile")).to_have_count(1)
    page.click(".tile-image")
    page.click("text=Delete")
    page.wait_for_url("**/delete")
    page.click("button:has-text('Delete')")
    page.wait_for_url("**/all/")
    assert "Image deleted." in page.inner_text(".flashes")
    watched.page.context.close()


def test_the_api_reference_renders_its_document_under_the_strict_csp(watched, base_url):
    page = watched.page
    page.goto(base_url + "/api/docs")
    sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
    assert {"/api/batches", "/api/batches/{batch_id}", "/api/images", "/api/me"} <= set(paths)
    assert "Image Generator API" in page.inner_text(".info")
