"""End to end in headless Chromium (tests/browser_stack.py): the Generate bar's price follows quick changes, is the
price reserved for every model and images per prompt, a stale one is refused with nothing charged, and the form
opens with the account's last options after a reload and in a second browser."""

import re

import pytest
from browser_stack import ADA, BOB, MEMBER, fill_prompts, refused_at_the_new_price, signed_in, sync_api

from app.providers.options import MODELS

pytestmark = pytest.mark.e2e

# Two changes `gap` ms apart, made by the page itself (0: in one task, so nothing can run between them); resolves
# once both are made.
TWO_CHANGES = """([first, firstValue, second, secondValue, gap]) => new Promise(done => {
  const change = (id, value) => {
    const select = document.getElementById(id);
    select.value = value;
    select.dispatchEvent(new Event('input', {bubbles: true}));
    select.dispatchEvent(new Event('change', {bubbles: true}));
  };
  change(first, firstValue);
  if (!gap) { change(second, secondValue); done(); return; }
  setTimeout(() => { change(second, secondValue); done(); }, gap);
})"""


def squeezed(text: str) -> str:
    return " ".join(text.split())


def bar_text(page) -> str:
    return squeezed(page.inner_text("#batch-cost"))


def expected_credits(page) -> float:
    return float(page.input_value("#expected-credits"))


def reserved_on_batch_page(page) -> float:
    text = page.inner_text("#batch-credits")
    return float(re.match(r"Credits: ([\d.]+) reserved", text).group(1))


def server_sentence(page, base_url, prompts, model, per_prompt) -> str:
    """The sentence the server writes for this form (its no-JavaScript price), asked with the page's session."""
    form = {"csrf_token": page.input_value("input[name=csrf_token]"), "model": model,
            "images_per_prompt": str(per_prompt), "roll_seed": "1",
            **{f"prompts-{i}": text for i, text in enumerate(prompts)}}
    html = page.request.post(base_url + "/", form=form).text()
    inner = re.search(r'<p id="batch-cost".*?>(.*?)</p>', html, re.S).group(1)
    return squeezed(re.sub(r"<[^>]+>", "", inner))


def cancel_the_rest(page) -> None:
    """Free the workers for the next test: what is still queued is canceled (and refunded)."""
    button = page.get_by_role("button", name="Cancel the rest")
    if button.count():
        button.click()
        sync_api.expect(button).to_have_count(0)


def test_two_changes_within_100_ms_end_on_the_final_price_and_it_stays(watched, base_url):
    page = watched.page
    fill_prompts(page, base_url, ["a lighthouse in a gale"])
    page.evaluate(TWO_CHANGES, ["images_per_prompt", "4", "model", "ultra", 0])
    final = "1 prompt × 4 images = 4 images × 8 credits (Stable Image Ultra) = 32 credits (about $0.32)"
    sync_api.expect(page.locator("#batch-cost")).to_contain_text(final)
    page.evaluate(TWO_CHANGES, ["model", "ultra", "model", "sd3.5-flash", 20])
    flash = "1 prompt × 4 images = 4 images × 2.5 credits (SD 3.5 Flash) = 10 credits (about $0.10)"
    sync_api.expect(page.locator("#batch-cost")).to_contain_text(flash)
    page.select_option("#images_per_prompt", "2")  # and as fast as Playwright's own select drives the page
    page.select_option("#model", "sd3.5-large")
    large = "1 prompt × 2 images = 2 images × 6.5 credits (SD 3.5 Large) = 13 credits (about $0.13)"
    sync_api.expect(page.locator("#batch-cost")).to_contain_text(large)
    page.wait_for_timeout(1500)  # an answer to an earlier state, were one in flight, would have landed by now
    assert large in bar_text(page) and expected_credits(page) == 13
    page.click("#generate")
    page.wait_for_url("**/generate/*")
    assert reserved_on_batch_page(page) == 13
    cancel_the_rest(page)
    assert watched.loads == 2


def test_every_model_and_images_per_prompt_reserve_what_the_bar_showed(watched, base_url):
    page = watched.page
    prompts = ["a castle on a hill", "a boat on a lake"]
    for model in MODELS:
        for per_prompt in range(1, 5):
            fill_prompts(page, base_url, prompts)
            page.select_option("#model", model)
            page.select_option("#images_per_prompt", str(per_prompt))
            shown = re.search(r"= ([\d.]+) credits \(about", bar_text(page))
            preview = float(shown.group(1))
            assert preview == expected_credits(page) == 2 * per_prompt * MODELS[model].credits
            # The page's sentence is the server's own for the same form, word for word.
            assert bar_text(page) == server_sentence(page, base_url, prompts, model, per_prompt)
            page.click("#generate")
            page.wait_for_url("**/generate/*")
            assert reserved_on_batch_page(page) == preview, (model, per_prompt)
            cancel_the_rest(page)


def confirmed(page, credits) -> None:
    """The second press: the batch is made at the price now shown."""
    with page.expect_navigation():
        page.click("#generate")
    assert "/generate/" in page.url and reserved_on_batch_page(page) == credits
    cancel_the_rest(page)


def allowance_text(page) -> str:
    return page.inner_text("#allowance")


def test_without_javascript_a_stale_price_is_refused_charging_nothing_and_a_second_press_confirms(
        browser, base_url):
    watched = signed_in(browser, base_url, ADA, javascript=False)
    page = watched.page
    try:
        page.goto(base_url + "/")
        page.fill("#prompts-0", "an ultra windmill")
        before = allowance_text(page)
        assert before == "You have 20 of 20 credits left this month."
        page.select_option("#images_per_prompt", "2")
        page.select_option("#model", "ultra")  # without JavaScript the bar still says 0 credits
        refused_at_the_new_price(watched, 16)
        assert page.url == base_url + "/"  # no batch page: nothing was queued
        assert "= 16 credits" in bar_text(page) and allowance_text(page) == before
        assert page.input_value("#prompts-0") == "an ultra windmill"
        assert page.input_value("#model") == "ultra" and page.input_value("#images_per_prompt") == "2"
        assert page.get_attribute("#generate", "autofocus") is not None
        confirmed(page, 16)
    finally:
        watched.close()


def with_old_prices(route) -> None:
    """The home page as it was served before Ultra's price changed: its price table says 1 credit."""
    if route.request.method != "GET":
        route.continue_()
        return
    response = route.fetch()
    old = response.text().replace('"credits": 8,', '"credits": 1,')
    assert old != response.text()
    route.fulfill(response=response, body=old)


def test_a_tab_with_old_prices_is_refused_and_the_refused_form_confirms_with_javascript(browser, base_url):
    watched = signed_in(browser, base_url, MEMBER)
    page = watched.page
    try:
        page.route(base_url + "/", with_old_prices)
        fill_prompts(page, base_url, ["a bridge at night", "a bridge at noon"])
        page.select_option("#images_per_prompt", "1")
        page.select_option("#model", "ultra")
        assert "= 2 credits" in bar_text(page) and expected_credits(page) == 2  # what this old tab believes
        refused_at_the_new_price(watched, 16)
        assert expected_credits(page) == 16 and "= 16 credits" in bar_text(page)
        assert page.eval_on_selector_all("textarea.prompt-input", "els => els.map(e => e.value)") == [
            "a bridge at night", "a bridge at noon"]
        confirmed(page, 16)
    finally:
        watched.close()


CHOSEN = {"model": "sd3.5-large", "aspect_ratio": "21:9", "style_preset": "neon-punk", "output_format": "jpeg",
          "images_per_prompt": "3", "cfg_scale": "7.5", "negative_prompt": "text, watermarks"}


def option_values(page) -> dict[str, str]:
    return {name: page.input_value(f"#{name}") for name in CHOSEN}


def test_the_last_options_survive_a_reload_and_open_in_a_second_browser(browser, base_url):
    laptop = signed_in(browser, base_url, BOB)
    phone = None
    try:
        page = laptop.page
        page.goto(base_url + "/")
        page.fill("#prompts-0", "a windmill kept in mind")
        for name, value in CHOSEN.items():
            if page.locator(f"select#{name}").count():
                page.select_option(f"#{name}", value)
            else:
                page.fill(f"#{name}", value)
        page.click("#generate")
        page.wait_for_url("**/generate/*")
        cancel_the_rest(page)
        page.goto(base_url + "/")
        assert option_values(page) == CHOSEN and page.input_value("#prompts-0") == ""
        page.reload()
        assert option_values(page) == CHOSEN
        phone = signed_in(browser, base_url, BOB)  # its own cookies: the options come from the account
        assert option_values(phone.page) == CHOSEN and phone.page.input_value("#prompts-0") == ""
        phone.page.fill("#prompts-0", "a second windmill")
        sync_api.expect(phone.page.locator("#batch-cost")).to_contain_text(
            "1 prompt × 3 images = 3 images × 6.5 credits (SD 3.5 Large) = 19.5 credits")
    finally:
        laptop.close()
        if phone is not None:
            phone.close()
