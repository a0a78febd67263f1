"""Sessions in a real browser on the whole stack: the account page's list, signing out elsewhere, a copied cookie."""

import pytest
from browser_stack import MEMBER, Watched, sign_in
from playwright import sync_api

pytestmark = pytest.mark.e2e

PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.5 Mobile/15E148 Safari/604.1")


def device(browser, user_agent=None):
    """A browser context of its own (a device), optionally with another User-Agent."""
    options = {"user_agent": user_agent} if user_agent else {}
    return Watched(browser.new_context(viewport={"width": 1280, "height": 860}, **options).new_page())


def copy_into(browser, source):
    """Another device holding a copy of source's cookies, as someone who took them would."""
    thief = device(browser, "curl/8.5.0")
    thief.page.context.add_cookies(source.page.context.cookies())
    return thief


def is_signed_out(watched, base_url):
    watched.page.goto(base_url + "/all/")
    return watched.page.url == base_url + "/login?next=/all/"


def test_sign_out_everywhere_else_from_the_account_page_ends_the_other_devices(browser, base_url):
    laptop, phone = device(browser), device(browser, PHONE)
    for watched in (laptop, phone):
        sign_in(watched, base_url, MEMBER)
    thief = copy_into(browser, phone)
    assert not is_signed_out(thief, base_url)
    page = laptop.page
    page.goto(base_url + "/account")
    rows = page.locator("#sessions + p + table tbody tr")
    sync_api.expect(rows).to_have_count(2)
    sync_api.expect(page.locator("tr", has_text="This browser")).to_contain_text("Chrome")
    sync_api.expect(page.locator("tr", has_text="Mobile Safari 17 on iOS 17")).to_have_count(1)
    page.click("button:has-text('Sign out everywhere else')")
    page.wait_for_url(base_url + "/account#sessions")
    sync_api.expect(page.locator(".flash")).to_have_text("Signed out 1 other session.")
    sync_api.expect(rows).to_have_count(1)
    assert is_signed_out(phone, base_url) and is_signed_out(thief, base_url)
    assert not is_signed_out(laptop, base_url)
    for watched in (laptop, phone, thief):
        watched.close()


def test_a_cookie_copied_before_signing_out_is_refused_after(browser, base_url):
    laptop = device(browser)
    sign_in(laptop, base_url, MEMBER)
    thief = copy_into(browser, laptop)
    assert not is_signed_out(thief, base_url)
    laptop.page.click("header button:has-text('Sign out')")
    laptop.page.wait_for_url(base_url + "/login")
    assert is_signed_out(thief, base_url)
    answer = thief.page.request.get(base_url + "/api/me")
    assert answer.status == 401 and answer.json()["error"]["code"] == "unauthorized"
    laptop.close()
    thief.close()
