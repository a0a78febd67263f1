"""End to end in headless Chromium (tests/browser_stack.py): a hidden tab is notified when its batch finishes and
its title shows the progress; a visible one is not notified; the usage charts at 1280 and 390 px; webhooks on the
account page (a private address refused next to the field, the secret shown once)."""

import re
import time

import pytest
from browser_stack import ADMIN, MEMBER, Watched, screenshot, sign_in, submit_prompts, sync_api

pytestmark = pytest.mark.e2e

# The page believes it is in a background tab, and every notification it makes is recorded as well as shown.
HIDDEN_TAB = """
Object.defineProperty(Document.prototype, "visibilityState", {configurable: true, get: () => "hidden"});
Object.defineProperty(Document.prototype, "hidden", {configurable: true, get: () => true});
"""
RECORDED_NOTIFICATIONS = """
window.__notes = [];
(function () {
  const Real = window.Notification;
  function Recorded(title, options) {
    window.__notes.push({title: title, body: (options || {}).body});
    return new Real(title, options);
  }
  Object.defineProperty(Recorded, "permission", {get: () => Real.permission});
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""
PROGRESS_TITLE = re.compile(r"\((\d)/2\) Image Generator")


def _context(browser, base_url, account, hidden, width=1280, height=860):
    """A signed-in context with notifications granted, recording them; its tab hidden if asked."""
    context = browser.new_context(viewport={"width": width, "height": height}, permissions=["notifications"])
    watched = Watched(context.new_page())
    watched.page.add_init_script(RECORDED_NOTIFICATIONS + (HIDDEN_TAB if hidden else ""))
    sign_in(watched, base_url, account)
    return watched


def _turn_on_notifications(page, base_url):
    page.goto(base_url + "/account")
    section = page.locator("#browser-notifications")
    sync_api.expect(section).to_be_visible()
    assert not page.locator("[data-notify-setting=notify]").is_checked()  # off until ticked
    page.check("[data-notify-setting=notify]")
    sync_api.expect(page.locator("#notify-permission")).to_have_text("Notifications are on for this browser.")
    page.check("[data-notify-setting=badge]")


def _watch_until_notified_or_done(page, timeout=60.0):
    """Titles and icons the tab showed until the batch was done (every 100 ms)."""
    titles, icons, deadline = [], [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        titles.append(page.title())
        icons.append(page.evaluate("document.querySelector(\"link[rel~='icon']\").href"))
        if page.locator("#batch-progress[data-done=true]").count():
            page.wait_for_timeout(300)
            return titles, icons
        page.wait_for_timeout(100)
    raise AssertionError(f"the batch did not finish; titles seen: {titles[-5:]}")


def test_a_hidden_tab_is_notified_when_its_batch_finishes_and_its_title_shows_progress(browser, base_url):
    watched = _context(browser, base_url, MEMBER, hidden=True)
    page = watched.page
    try:
        _turn_on_notifications(page, base_url)
        submit_prompts(page, base_url, ["a paper boat on a pond", "a lighthouse at dusk"])
        batch_url, name = page.url, page.locator(".batch-title").inner_text()
        titles, icons = _watch_until_notified_or_done(page)
        progress = [PROGRESS_TITLE.fullmatch(title) for title in titles]
        assert any(progress) and {int(m.group(1)) for m in progress if m} <= {0, 1}, titles
        assert any(icon.startswith("data:image/png") for icon in icons)  # the badge, while it ran
        notes = page.evaluate("window.__notes")
        assert notes == [{"title": f"2 images ready — {name}", "body": "Click to open the batch."}]
        assert page.title() == f"{name} · Image Generator" and page.url == batch_url
        assert page.evaluate("document.querySelector(\"link[rel~='icon']\").href").endswith("/favicon.svg")
    finally:
        watched.close()


def test_a_visible_tab_and_a_browser_that_never_ticked_the_box_are_not_notified(browser, base_url):
    for hidden, ticked in ((False, True), (True, False)):
        watched = _context(browser, base_url, MEMBER, hidden=hidden)
        page = watched.page
        try:
            if ticked:
                _turn_on_notifications(page, base_url)
            submit_prompts(page, base_url, ["a kite over a beach"])
            titles, _icons = _watch_until_notified_or_done(page)
            assert "(0/1) Image Generator" in titles
            assert page.evaluate("window.__notes") == []
        finally:
            watched.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_usage_charts_render_at_desktop_and_phone_widths_without_console_errors(browser, base_url, width):
    watched = _context(browser, base_url, ADMIN, hidden=False, width=width)
    page = watched.page
    try:
        submit_prompts(page, base_url, [f"a usage chart's bar at {width} px"])
        _watch_until_notified_or_done(page)
        page.goto(base_url + "/admin/usage")
        charts = page.locator(".usage-chart svg")
        sync_api.expect(charts).to_have_count(2)
        assert page.locator(".usage-chart svg rect").count() >= 2
        for index in range(2):
            box = charts.nth(index).bounding_box()
            assert box["width"] > 300 * width / 1280 and box["x"] + box["width"] <= width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.locator(".usage-legend li").count() >= 2
        screenshot(page, f"usage-{width}.png", full_page=True)
        page.goto(base_url + "/account/usage")
        sync_api.expect(page.locator(".usage-chart svg")).to_have_count(1)
    finally:
        watched.close()


def test_webhooks_on_the_account_page_refuse_a_private_address_and_show_the_secret_once(browser, base_url):
    watched = _context(browser, base_url, MEMBER, hidden=False)
    page = watched.page
    try:
        page.goto(base_url + "/account")
        page.fill("#url", "http://10.0.0.1/hooks")
        with page.expect_navigation():
            page.click("button:has-text('Add endpoint')")
        watched.expect_status(422)
        sync_api.expect(page.locator("#url-error")).to_contain_text("private")
        assert page.input_value("#url") == "http://10.0.0.1/hooks"
        page.fill("#url", "https://93.184.215.14/hooks/images")
        page.check("input[value='generation.failed']")
        with page.expect_navigation():
            page.click("button:has-text('Add endpoint')")
        secret = page.locator("#new-webhook-secret").inner_text()
        assert secret.startswith("whsec_")
        screenshot(page, "webhooks.png", full_page=True)
        page.goto(base_url + "/account")
        assert secret not in page.content()
        sync_api.expect(page.locator(".webhook-endpoints")).to_contain_text("batch.completed, generation.failed")
    finally:
        watched.close()
