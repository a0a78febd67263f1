"""End to end in headless Chromium against the real stack (tests/browser_stack.py): rows, live cards, the
gallery, accounts and their allowances. One test runs a second stack with AUTH_MODE=none."""

import re
import time

import pytest
from browser_stack import (
    ADA,
    ADMIN,
    BOB,
    CONCURRENCY,
    MEMBER,
    PAGE_SIZE,
    add_row,
    card,
    card_states,
    generation_id,
    open_page,
    prompt_values,
    refused_at_the_new_price,
    screenshot,
    signed_in,
    submit_prompts,
    submit_three_prompts_with_a_removal,
    sync_api,
    wait_for_states,
)
from conftest import private_redis, throwaway_database
from live_stack import live_stack

pytestmark = pytest.mark.e2e


def test_rows_added_and_removed_in_place_generate_exactly_the_remaining_prompts_live(watched, base_url):
    page = watched.page
    prompts = ["a red fox in fresh snow", "MIDDLE prompt that is removed", "a blue whale at dusk",
               "a green owl on a branch"]
    submit_three_prompts_with_a_removal(page, base_url, prompts)
    assert watched.loads == 1  # every row edit happened in place
    sync_api.expect(page.locator("#batch-cost")).to_contain_text("3 images")  # the cost caught up with the rows
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")
    loads_after_submit = watched.loads
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == [
        prompts[0], prompts[2], prompts[3]]

    seen = wait_for_states(page, lambda states: states == ["succeeded"] * 3)
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


def test_validation_messages_sit_next_to_their_fields_and_keep_the_text(watched, base_url):
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
    # The message first; the character counter (tests/test_e2e_form.py) may follow it.
    assert page.get_attribute("#prompts-1", "aria-describedby").split()[0] == "prompts-1-error"
    assert prompt_values(page) == ["a short prompt that is fine", long_prompt.strip()]
    watched.expect_status(422)  # the browser logs the 422 answers themselves; nothing else may appear


def test_the_gallery_lists_newest_first_and_loads_more_in_place(watched, base_url):
    page = watched.page
    # The first page as the server sends it: in the browser, infinite scroll may already be bringing the next.
    first_page = re.findall(r'<p class="tile-prompt">([^<]*)</p>', page.request.get(base_url + "/all/").text())
    assert len(first_page) == PAGE_SIZE
    assert first_page[0] == "a mountain village"  # the most recent success
    page.goto(base_url + "/all/")
    loads = watched.loads
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the end in view: the next page comes
    sync_api.expect(page.locator(".tile").nth(PAGE_SIZE)).to_be_visible()
    both_pages = page.eval_on_selector_all(".tile-prompt", "els => els.map(e => e.textContent)")
    assert both_pages[:PAGE_SIZE] == first_page
    assert "a red fox in fresh snow" in both_pages[PAGE_SIZE:]
    assert len(set(both_pages)) == len(both_pages)
    assert watched.loads == loads


def generate_at_the_new_price(watched, credits):
    """Without JavaScript the bar is priced at the last page load, so the prompt typed since makes the first press
    come back with the new price; the second confirms it."""
    refused_at_the_new_price(watched, credits)
    watched.page.click("button[name=generate]")
    watched.page.wait_for_url("**/generate/*")


def test_without_javascript_rows_and_results_work_through_plain_posts_and_reloads(browser, base_url):
    watched = signed_in(browser, base_url, javascript=False)
    page = watched.page
    prompts = ["no-js first", "no-js middle", "no-js third", "no-js fourth"]
    submit_three_prompts_with_a_removal(page, base_url, prompts)
    assert watched.loads > 1  # each row edit was a full page
    generate_at_the_new_price(watched, 9)
    deadline = time.monotonic() + 40
    while card_states(page) != ["succeeded"] * 3:
        assert time.monotonic() < deadline, card_states(page)
        page.wait_for_event("load", timeout=10_000)  # the <noscript> refresh
    assert page.eval_on_selector_all(".card-prompt", "els => els.map(e => e.textContent)") == [
        "no-js first", "no-js third", "no-js fourth"]
    watched.close()


@pytest.mark.parametrize("path", ["/", "/all/", "/generate/1"])
def test_pages_send_a_strict_csp_and_break_none_of_it(watched, base_url, path):
    response = watched.page.goto(base_url + path)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    watched.page.wait_for_timeout(300)
    # The same policy outside a browser too (with this session, so the page is answered, not redirected).
    assert watched.page.request.get(base_url + path).headers["content-security-policy"] == policy


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
    # A member sees their own allowance; the Stability balance is the install's, for admins only.
    sync_api.expect(page.locator("#allowance")).to_contain_text("credits used this month")
    assert page.locator("#balance").count() == 0
    assert watched.loads == 1


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
    sync_api.expect(page.locator(".progress-text")).to_contain_text("4 of 4 finished · 3 made, 1 canceled")
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
    page.click(".tile-image")  # the larger view (tests/test_e2e_lightbox.py), and from it the detail page
    page.click("#lightbox-details")
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
    assert page.request.get(detail_url).status == 404


def test_without_javascript_cancel_retry_search_and_delete_work_through_plain_forms(browser, base_url):
    watched = signed_in(browser, base_url, javascript=False)
    page = watched.page
    page.goto(base_url + "/")
    page.fill("#prompts-0", "a volcano [moderate]")
    page.click("button[name=add_row]")
    page.fill("#prompts-1", "a quiet meadow for no-js")
    page.click("button[name=add_row]")
    page.fill("#prompts-2", "a canyon to cancel")
    generate_at_the_new_price(watched, 9)
    card(page, 2).get_by_role("button", name="Cancel").click()
    sync_api.expect(card(page, 2)).to_have_attribute("data-status", "canceled")
    deadline = time.monotonic() + 40
    while card_states(page)[:2] != ["failed", "succeeded"]:
        assert time.monotonic() < deadline, card_states(page)
        page.wait_for_event("load", timeout=10_000)
    card(page, 0).get_by_role("button", name="Retry").click()
    page.wait_for_load_state()
    assert "Queued again." in page.inner_text(".progress-text")  # the generate page says it in its progress line
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
    watched.close()


# Issue 9's "Done when", as an operator would try it: an admin and members with 20 credits made by
# `flask users create` (see ACCOUNTS), each signing in through /login.
ADA_PROMPT = "done-when: ada's lighthouse at dawn"
BOB_PROMPT = "done-when: bob's windmill in fog"


@pytest.fixture(scope="module")
def members_images(browser, base_url) -> dict[str, int]:
    """Ada and Bob each generate one image (3 credits of their 20); the id of each one's image, by email."""
    prompts = {ADA: ADA_PROMPT, BOB: BOB_PROMPT}
    pages = {account: signed_in(browser, base_url, account) for account in prompts}
    for account, watched in pages.items():  # both submitted before either is awaited: the two run side by side
        submit_prompts(watched.page, base_url, [prompts[account]])
    made = {}
    for account, watched in pages.items():
        sync_api.expect(card(watched.page, 0)).to_have_attribute("data-status", "succeeded", timeout=30_000)
        made[account.email] = generation_id(card(watched.page, 0))
        watched.close()
    return made


def tile_prompts(page) -> list[str]:
    return page.eval_on_selector_all(".tile-prompt", "els => els.map(e => e.textContent)")


def test_a_member_sees_only_their_own_images_and_what_is_left(sign_in_as, base_url, members_images):
    page = sign_in_as(ADA).page
    sync_api.expect(page.locator("#allowance")).to_have_text("You have 17 of 20 credits left this month.")
    page.goto(base_url + "/all/")
    assert tile_prompts(page) == [ADA_PROMPT]  # not Bob's, nor the many of the general tests' member
    assert page.locator(".owner, #owner").count() == 0  # owners are for admins


def fill_options(page, options: dict[str, str]) -> None:
    """Set each option control by id: selects by value, inputs by typing."""
    for field, value in options.items():
        if page.locator(f"select#{field}").count():
            page.select_option(f"#{field}", value)
        else:
            page.fill(f"#{field}", value)


def option_values(page, fields) -> dict[str, str]:
    return {field: page.input_value(f"#{field}") for field in fields}


def test_a_batch_over_the_allowance_is_refused_next_to_generate_keeping_everything(
        sign_in_as, base_url, members_images):
    watched = sign_in_as(ADA)
    page = watched.page
    prompts = ["an ultra castle", "an ultra bridge", "an ultra harbour"]  # 3 × 8 credits = 24 > the 17 left
    options = {"model": "ultra", "aspect_ratio": "16:9", "style_preset": "cinematic", "output_format": "webp",
               "seed": "1234", "negative_prompt": "blurry, text"}
    page.goto(base_url + "/")
    for index, prompt in enumerate(prompts):
        if index:
            add_row(page, index + 1)
        page.fill(f"#prompts-{index}", prompt)
    fill_options(page, options)
    with page.expect_navigation():
        page.click("button[name=generate]")
    watched.expect_status(402)
    assert page.url == base_url + "/"  # no batch page: nothing was queued
    error = page.locator(".form-actions #spending-error")
    sync_api.expect(error).to_have_text("This batch costs 24 credits; you have 17 left this month.")
    assert page.get_attribute("button[name=generate]", "aria-describedby") == "spending-error"
    assert prompt_values(page) == prompts
    assert option_values(page, options) == options
    sync_api.expect(page.locator("#allowance")).to_have_text("You have 17 of 20 credits left this month.")


def used_this_month(page, account) -> str:
    """The admin page's 'Used this month' cell of one account."""
    return page.locator("tr", has_text=account.email).locator("td").nth(2).inner_text().strip()


def test_the_admin_sees_both_members_images_with_their_owner_and_their_spend(sign_in_as, base_url, members_images):
    page = sign_in_as(ADMIN).page
    sync_api.expect(page.locator("#balance")).to_contain_text("Your Stability balance:")  # admins only
    page.goto(base_url + "/all/?q=done-when")
    tiles = page.locator(".tile")
    sync_api.expect(tiles).to_have_count(2)
    owners = {tiles.nth(i).locator(".tile-prompt").inner_text(): tiles.nth(i).locator(".owner").inner_text()
              for i in range(2)}
    assert owners == {ADA_PROMPT: ADA.email, BOB_PROMPT: BOB.email}
    page.click("nav >> text=Users")
    page.wait_for_url("**/admin/users")
    # 3 each: one Core image; the refused batch reserved nothing.
    assert (used_this_month(page, ADA), used_this_month(page, BOB)) == ("3", "3")
    assert float(used_this_month(page, MEMBER)) > 0
    screenshot(page, "admin-users.png", full_page=True)


def test_another_members_image_urls_answer_404(sign_in_as, base_url, members_images):
    bob, ada = sign_in_as(BOB).page, sign_in_as(ADA).page
    image = members_images[BOB.email]
    for path in (f"/images/{image}", f"/images/{image}/file", f"/images/{image}/thumb"):
        assert bob.request.get(base_url + path).status == 200, path  # the URL is right: its owner gets it
        answer = ada.request.get(base_url + path)
        assert answer.status == 404, path
        assert BOB_PROMPT not in answer.text()


def test_signing_out_returns_to_the_sign_in_page(sign_in_as, base_url):
    page = sign_in_as(MEMBER).page
    page.click("button:has-text('Sign out')")
    page.wait_for_url(base_url + "/login")
    page.goto(base_url + "/all/")
    assert page.url == base_url + "/login?next=/all/"  # the session really ended


def test_a_wrong_password_is_refused_and_the_email_stays(browser, base_url):
    watched = open_page(browser)
    page = watched.page
    page.goto(base_url + "/login")
    screenshot(page, "login.png")
    page.fill("#email", ADA.email)
    page.fill("#password", "not-ada-password")
    with page.expect_navigation():
        page.click("button:has-text('Sign in')")
    watched.expect_status(401)
    sync_api.expect(page.locator("#password-error")).to_have_text("Wrong email or password.")
    assert page.input_value("#email") == ADA.email
    assert page.input_value("#password") == ""
    assert page.url == base_url + "/login"
    watched.close()


def test_without_accounts_the_site_opens_on_the_form_and_a_batch_works(browser, tmp_path):
    """AUTH_MODE=none, as scripts/run.py serves a laptop: no sign-in anywhere, the offline demo provider."""
    with throwaway_database(tmp_path) as database_url, private_redis(tmp_path / "redis") as redis_url:
        env = {"AUTH_MODE": "none", "DATABASE_URL": database_url, "REDIS_URL": redis_url, "STABILITY_API_KEY": "",
               "SECRET_KEY": "e2e-secret", "MEDIA_ROOT": str(tmp_path / "media"), "DEMO_PROVIDER_DELAY": "0.5"}
        with live_stack(env, tmp_path, concurrency=CONCURRENCY) as url:
            watched = open_page(browser)
            page = watched.page
            page.goto(url + "/")
            assert page.url == url + "/"
            assert page.locator("text=Sign out").count() == 0
            page.goto(url + "/login")
            assert page.url == url + "/"  # nothing to sign in to
            submit_prompts(page, url, ["a local red kite", "a local blue heron"])
            wait_for_states(page, lambda states: states == ["succeeded"] * 2)
            assert page.locator(".card .badge.demo").count() == 2
            # The demo's images are small (512 × 512): fitted, they are drawn at their own size, never enlarged.
            page.goto(url + page.locator(".card a[data-view]").first.get_attribute("href"))
            image = page.locator("#detail-image img")
            image.evaluate("el => el.decode()")
            natural = image.evaluate("el => el.naturalWidth")
            assert image.bounding_box()["width"] == natural < page.locator(".detail-media").bounding_box()["width"]
            page.goto(url + "/account")  # one local user: no password to change
            sync_api.expect(page.locator(".lead")).to_contain_text("Single-user mode")
            assert page.get_by_text("Change password").count() == 0
            assert page.locator("input[type=password]").count() == 0
            watched.close()


def test_the_api_reference_renders_its_document_under_the_strict_csp(watched, base_url):
    page = watched.page
    page.goto(base_url + "/api/docs")
    sync_api.expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=20_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
    assert {"/api/batches", "/api/batches/{batch_id}", "/api/images", "/api/me"} <= set(paths)
    assert "Image Generator API" in page.inner_text(".info")
