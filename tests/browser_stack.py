"""The browser tests' stack and helpers: a pytest plugin (see conftest.py), so every tests/test_e2e_*.py shares them.

`base_url` runs the whole stack (gunicorn, `python worker.py`, Redis, a database and the fake Stability server
with a latency) once per test module, with AUTH_MODE=accounts and accounts made by `flask users create`.
Screenshots are written only when SCREENSHOTS_DIR is set (`python3 scripts/screenshots.py`)."""

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import private_redis, throwaway_database
from fake_stability import FakeStability
from live_stack import Account, live_stack
from playwright import sync_api
from tests_support import PASSWORD

from app.providers.options import DEFAULT_OPTIONS

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS_DIR = os.environ.get("SCREENSHOTS_DIR")
KEY = "e2e-key"
LATENCY = 2.5  # longer than the 2 s poll, so every card is seen generating
CONCURRENCY = 2
PAGE_SIZE = 3
# MEMBER runs the general scenarios (no cap: they spend far more than 20 credits); ADA and BOB are the
# members with 20 credits of issue 9's "Done when", so their galleries hold only what those tests make.
MEMBER = Account("member@example.com", PASSWORD)
ADA = Account("ada@example.com", PASSWORD, monthly_credits=20)
BOB = Account("bob@example.com", PASSWORD, monthly_credits=20)
ADMIN = Account("admin@example.com", PASSWORD, admin=True)
ACCOUNTS = (ADMIN, MEMBER, ADA, BOB)

@contextmanager
def e2e_stack(tmp: Path, page_size: int = PAGE_SIZE) -> Iterator[str]:
    """The whole stack on its own database and Redis; a module wanting other settings calls this itself."""
    with FakeStability(api_key=KEY, latency=LATENCY) as fake, \
            throwaway_database(tmp) as database_url, private_redis(tmp / "redis") as redis_url:
        env = {"AUTH_MODE": "accounts", "IMAGE_GENERATOR_LOCAL": "0",
               "DATABASE_URL": database_url, "REDIS_URL": redis_url, "STABILITY_API_KEY": KEY,
               "STABILITY_API_BASE_URL": fake.base_url, "SECRET_KEY": "e2e-secret", "MEDIA_ROOT": str(tmp / "media"),
               "GALLERY_PAGE_SIZE": str(page_size), "MAX_PROMPTS_PER_BATCH": "10",
               # Two quick attempts, so "[e500x2]" fails once as a whole and then succeeds on a retry.
               "STABILITY_MAX_ATTEMPTS": "2", "STABILITY_RETRY_BASE_DELAY": "0.2"}
        with live_stack(env, tmp, concurrency=CONCURRENCY, accounts=ACCOUNTS) as url:
            yield url


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """The whole stack on its own database and Redis, so unit tests' queues never mix with it."""
    with e2e_stack(tmp_path_factory.mktemp("e2e")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run; skipped without one unless E2E_REQUIRED is set."""
    if not shutil.which(CHROMIUM) and not os.environ.get("E2E_REQUIRED"):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); set E2E_REQUIRED=1 to fail instead")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Watched:
    """A page with what a person would not see but a test must: console errors, CSP violations, loads."""

    def __init__(self, page):
        self.page = page
        self.console_errors: list[str] = []
        self.expected_statuses: set[int] = set()
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

    def expect_status(self, status: int) -> None:
        """The browser logs a page answered with this status (a refused form); that one is not an error."""
        self.expected_statuses.add(status)

    def unexpected_console_errors(self) -> list[str]:
        return [e for e in self.console_errors
                if not any(f"status of {status}" in e for status in self.expected_statuses)]

    def close(self) -> None:
        """Check nothing went wrong unseen, then close the page's context."""
        try:
            assert self.unexpected_console_errors() == []
            assert self.csp_violations() == []
        finally:
            self.page.context.close()


def open_page(browser, javascript=True):
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 860})
    return Watched(context.new_page())


def screenshot(page, name, **options):
    """Save a screenshot for the README, only when SCREENSHOTS_DIR asks for it."""
    if SCREENSHOTS_DIR:
        page.screenshot(path=str(Path(SCREENSHOTS_DIR) / name), **options)


def sign_in(watched, base_url, account):
    """Sign in as a person would: open the site, get sent to /login, fill in the form."""
    page = watched.page
    page.goto(base_url + "/")
    assert page.url == base_url + "/login?next=/"
    page.fill("#email", account.email)
    page.fill("#password", account.password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(base_url + "/")
    watched.loads = 0  # tests count the page loads of what they do, not of signing in


def signed_in(browser, base_url, account=MEMBER, javascript=True):
    """A fresh browser context, signed in through /login; the test goes on in that context."""
    watched = open_page(browser, javascript)
    sign_in(watched, base_url, account)
    return watched


@pytest.fixture
def watched(browser, base_url):
    watched = signed_in(browser, base_url)
    yield watched
    watched.close()


@pytest.fixture
def sign_in_as(browser, base_url):
    """Open a signed-in context per account; each is checked for console errors and CSP violations after."""
    opened = []

    def open_as(account):
        opened.append(signed_in(browser, base_url, account))
        return opened[-1]

    yield open_as
    for watched in opened:
        watched.close()


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


# The form's own defaults: it opens with the account's last options (app/prompts/memory.py), which tests that fill
# prompts put back, so what one test chose never carries into the next.
DEFAULT_FORM = {**{name: "" if value is None else str(value) for name, value in DEFAULT_OPTIONS.as_dict().items()
                   if name != "seed"}, "images_per_prompt": "1"}
PUT_BACK = """defaults => {
  for (const [id, value] of Object.entries(defaults)) {
    const field = document.getElementById(id);
    if (field.value === value) continue;
    field.value = value;
    field.dispatchEvent(new Event('change', {bubbles: true}));
  }
  const lock = document.getElementById('seed_locked');
  if (lock.checked) lock.click();
}"""


def default_options(page):
    """Put every option back to the form's default (one round trip, only what differs changes)."""
    page.evaluate(PUT_BACK, DEFAULT_FORM)


def fill_prompts(page, base_url, prompts):
    """Open the form with its default options and fill one row per prompt through 'Add prompt'."""
    page.goto(base_url + "/")
    default_options(page)
    for index, prompt in enumerate(prompts):
        if index:
            add_row(page, index + 1)
        page.fill(f"#prompts-{index}", prompt)


def refused_at_the_new_price(watched, credits):
    """Press Generate on a form whose shown price is out of date: it comes back with the new one, charging nothing."""
    page = watched.page
    with page.expect_navigation():
        page.click("#generate")
    watched.expect_status(409)
    sync_api.expect(page.locator(".generate-bar #spending-error")).to_have_text(
        f"The price changed: now {credits:g} credits. Press Generate again to confirm.")


def submit_prompts(page, base_url, prompts):
    """Fill one row per prompt through 'Add prompt' and press Generate."""
    fill_prompts(page, base_url, prompts)
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")

def expect_notice_agrees(page, images):
    """The batch page's "N images queued." shows only while none of them has started (a worker may be quicker)."""
    text = page.locator(".progress-text").inner_text()
    assert not (f"{images} images queued." in text and "generating" in text), text


def card(page, position):
    return page.locator(".card").nth(position)

def generation_id(locator) -> int:
    """The generation id a card or tile stands for."""
    return int(locator.get_attribute("id").removeprefix("generation-"))
