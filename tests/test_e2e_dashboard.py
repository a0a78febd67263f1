"""rq-dashboard at /rq/ in headless Chromium (tests/browser_stack.py), as an admin: its tables fill in under its own
CSP with no violation, and Compact on an empty queue says so."""

import pytest
from browser_stack import ADMIN, submit_prompts, sync_api, wait_for_states

pytestmark = pytest.mark.e2e


def test_the_queue_table_fills_in_with_no_csp_violation(sign_in_as, base_url):
    watched = sign_in_as(ADMIN)
    page = watched.page
    submit_prompts(page, base_url, ["a lighthouse for the dashboard"])  # the admin's own queue now exists
    wait_for_states(page, lambda states: states == ["succeeded"])
    page.goto(base_url + "/rq/")
    sync_api.expect(page.locator("#queues tr[data-role=queue]").filter(has_text="generations-u")).to_have_count(1)
    sync_api.expect(page.locator("#queues tr[data-role=loading-placeholder]")).to_have_count(0)
    page.goto(base_url + "/rq/0/view/workers")
    sync_api.expect(page.locator("#workers tbody tr[data-role=worker]").first).to_be_visible()
    # Watched.close (the fixture's teardown) fails on any console error or CSP violation of these pages.


def test_compact_on_an_empty_queue_shows_a_message(sign_in_as, base_url):
    watched = sign_in_as(ADMIN)
    page = watched.page
    page.goto(base_url + "/rq/0/view/jobs/generations/queued/8/asc/1")
    sync_api.expect(page.locator("#jobs tbody")).to_have_text("No jobs.")
    page.click("#compact-btn")
    page.click("#confirmation-modal-yes")
    message = page.locator("#rq-message")
    sync_api.expect(message).to_have_text("The queue generations is empty: there is nothing to compact.")
    sync_api.expect(message).to_have_class("alert alert-info fixed-bottom m-3")
