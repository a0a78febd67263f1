"""End to end in headless Chromium (tests/browser_stack.py): the live generate page — placeholders of the image's
shape with the time left, the poll's pace and its end, the segmented progress line, Retry all failed, the queued
message that goes (and never outlives its counts), the cards' buttons named by prompt and image, and relative times."""

import re
import time

import pytest
import requests
from browser_stack import (
    LATENCY,
    card,
    expect_notice_agrees,
    fill_prompts,
    screenshot,
    submit_prompts,
    sync_api,
    wait_for_states,
)

pytestmark = pytest.mark.e2e

FINAL = ("succeeded", "failed", "filtered", "canceled")


def submit_with_ratio(page, base_url, prompts, ratio, per_prompt="1"):
    """Fill one row per prompt, choose the aspect ratio and the images per prompt, press Generate."""
    fill_prompts(page, base_url, prompts)
    page.select_option("#aspect_ratio", ratio)
    page.select_option("#images_per_prompt", per_prompt)
    page.click("button[name=generate]")
    page.wait_for_url("**/generate/*")


def status_polls(page):
    """Every poll request the page sends from now on, as a list that grows."""
    polls = []
    page.on("request", lambda request: polls.append(request.url) if "/status?seen=" in request.url else None)
    return polls


def test_retry_all_failed_queues_every_failed_card_again_in_place(watched, base_url):
    page = watched.page
    submit_prompts(page, base_url, ["a cliff [e500x2]", "a cave [e500x2]", "a plain meadow"])
    wait_for_states(page, lambda states: states == ["failed", "failed", "succeeded"])
    loads = watched.loads
    button = page.get_by_role("button", name="Retry all failed")
    sync_api.expect(button).to_have_text("Retry all failed (2)")
    sync_api.expect(page.locator(".progress-text")).to_contain_text("3 of 3 finished · 1 made, 2 failed")
    button.click()
    sync_api.expect(page.locator(".progress-text")).to_contain_text("Queued 2 failed images again.")
    wait_for_states(page, lambda states: states == ["succeeded"] * 3)
    sync_api.expect(page.locator(".progress-text")).to_contain_text("3 of 3 finished · 3 made. All done.")
    sync_api.expect(button).to_have_count(0)
    sync_api.expect(card(page, 0)).to_contain_text("Earlier attempts (1)")
    assert watched.loads == loads  # done in place


def test_running_cards_hold_the_images_shape_and_time_left_then_polling_stops(watched, base_url):
    page = watched.page
    # One finished image of the model first, so there is a running time to estimate from.
    submit_prompts(page, base_url, ["a lighthouse to learn the model's pace"])
    wait_for_states(page, lambda states: states == ["succeeded"])
    # Two prompts, three images each: the README's picture of a batch mid-way.
    submit_with_ratio(page, base_url, ["a harbour at dawn", "a bridge in fog"], "16:9", per_prompt="3")
    polls = status_polls(page)
    expect_notice_agrees(page, 6)
    shot = {"taken": False, "checked": False}

    def check_running(states):
        if "running" in states and not shot["checked"]:
            running = page.locator(".card[data-status=running]").first
            box = running.locator(".card-image").bounding_box()
            assert abs(box["width"] / box["height"] - 16 / 9) < 0.02  # the image's shape, before it exists
            sync_api.expect(running.locator(".placeholder .eta")).to_have_text(re.compile(r"~\d+ s left|Almost done"))
            assert page.get_attribute("#batch-progress", "hx-trigger") == "every 1s"
            shot["checked"] = True
        if not shot["taken"] and "succeeded" in states and "running" in states:
            screenshot(page, "generate.png", full_page=True)
            shot["taken"] = True

    wait_for_states(page, lambda states: all(s in FINAL for s in states), timeout=60, on_change=check_running)
    assert shot["checked"]
    sync_api.expect(page.locator("#batch-progress")).not_to_have_attribute("hx-trigger", re.compile(".*"))
    text = page.locator(".progress-text").inner_text()
    assert "6 of 6 finished · 6 made. All done." in text and "queued." not in text
    assert page.locator(".flashes").count() == 0
    # No poll is sent once the batch is final: wait longer than the slowest interval, then count.
    sent = len(polls)
    page.wait_for_timeout(3_500)
    assert len(polls) == sent and sent > 0


def test_canceling_every_card_says_canceled_and_never_all_done(watched, base_url):
    page = watched.page
    submit_prompts(page, base_url, ["a slow dune [slow]", "a slow mesa [slow]", "a canyon", "a butte"])
    expect_notice_agrees(page, 4)
    page.get_by_role("button", name="Cancel the rest").click()
    wait_for_states(page, lambda states: states == ["canceled"] * 4)
    progress = page.locator(".progress-text")
    sync_api.expect(progress).to_contain_text("4 of 4 finished · 0 made, 4 canceled.")
    assert "All done" not in progress.inner_text() and "queued." not in progress.inner_text()
    assert page.locator(".progress-segments .segment-canceled > span").count() == 4
    assert page.locator(".progress-segments .segment-succeeded").count() == 0
    screenshot(page, "live-canceled.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    screenshot(page, "live-canceled-390-dark.png", full_page=True)


def hold_the_answer_until_an_image_runs(page, base_url):
    """Let the form's POST through but hold its answer back until one of the batch's images is generating, so the
    batch page the browser is sent to is rendered after the worker has started."""
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}

    def hold(route):
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        status = f"{base_url}{answer.headers['location']}/status"
        deadline = time.monotonic() + 30
        while "generating" not in requests.get(status, cookies=cookies, timeout=5).text:
            assert time.monotonic() < deadline, "no image of the batch ever started"
            time.sleep(0.1)
        route.fulfill(response=answer)

    page.route(base_url + "/", hold)


def test_the_queued_notice_never_outlives_the_counts_it_was_true_for(watched, base_url):
    page = watched.page
    fill_prompts(page, base_url, [f"a slow kite {n} [slow]" for n in range(3)])  # two slots: one waits
    hold_the_answer_until_an_image_runs(page, base_url)
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    progress = page.locator(".progress-text")
    sync_api.expect(progress).to_contain_text("generating")
    assert "3 images queued." not in progress.inner_text()  # not "2 generating, 1 queued… 3 images queued."
    page.get_by_role("button", name="Cancel the rest").click()
    wait_for_states(page, lambda states: all(s in FINAL for s in states))


def test_card_buttons_name_the_prompt_and_the_image_within_it(watched, base_url):
    page = watched.page
    submit_with_ratio(page, base_url, [f"a slow heron {n} [slow]" for n in range(1, 4)], "1:1", per_prompt="2")
    names = [f"prompt {prompt}, image {image}" for prompt in (1, 2, 3) for image in (1, 2)]
    for position, name in enumerate(names):  # six cards: never "Cancel prompt 6"
        sync_api.expect(card(page, position).get_by_role("button", name=f"Cancel {name}", exact=True)).to_be_visible()
    page.get_by_role("button", name="Cancel the rest").click()
    wait_for_states(page, lambda states: states == ["canceled"] * 6)
    # Redrawn in place by the answer to the cancel: the same names.
    for position, name in enumerate(names):
        sync_api.expect(card(page, position).get_by_role("button", name=f"Retry {name}", exact=True)).to_be_visible()


def test_times_read_relative_with_the_exact_local_time_on_hover(watched, base_url):
    page = watched.page
    submit_prompts(page, base_url, ["a clock tower"])
    submitted = page.locator(".meta time")
    sync_api.expect(submitted).to_have_text(re.compile(r"^(now|\d+ seconds? ago|1 minute ago)$"))
    title = submitted.get_attribute("title")
    assert title and "UTC" not in submitted.inner_text() and re.search(r"\d{4}", title)
    wait_for_states(page, lambda states: states == ["succeeded"], timeout=30 + LATENCY)
    page.goto(base_url + "/all/")
    tile_time = page.locator(".tile time").first
    sync_api.expect(tile_time).to_have_text(re.compile(r"ago$|^now$"))
    assert tile_time.get_attribute("title")
    # The tile's link opens the larger view; its address is the detail page's.
    page.goto(base_url + page.locator(".tile a.tile-image").first.get_attribute("href"))
    sync_api.expect(page.locator(".facts time")).to_have_text(re.compile(r"ago$|^now$"))
