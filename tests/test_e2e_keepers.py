"""Issue 24 in headless Chromium, as a new user tries it: star and rate from the keyboard in the larger view, the
Starred filter and the rating sort (kept in the address), a collection made from a selection and shared with the
team as viewers, a second member rating its images and getting 404 for the owner's others, infinite scroll, and a
share link opened signed out in a fresh browser, then revoked."""

import re

import pytest
from browser_stack import ADA, MEMBER, e2e_stack, open_page, screenshot, signed_in, submit_prompts, sync_api

pytestmark = pytest.mark.e2e

PAGE_SIZE = 4
PROMPTS = [f"keeper {i}: a lighthouse at dusk, version {i}" for i in range(6)]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """This module's own stack: pages of four, so six images take two."""
    with e2e_stack(tmp_path_factory.mktemp("e2e-keepers"), page_size=PAGE_SIZE) as url:
        yield url


@pytest.fixture(scope="module")
def images(browser, base_url) -> list[int]:
    """The member's six images, all made; their ids newest first (as the gallery lists them)."""
    watched = signed_in(browser, base_url, MEMBER)
    page = watched.page
    submit_prompts(page, base_url, PROMPTS)
    sync_api.expect(page.locator(".card[data-status='succeeded']")).to_have_count(len(PROMPTS), timeout=90_000)
    page.goto(base_url + "/all/")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # infinite scroll brings the rest
    sync_api.expect(page.locator(".tile")).to_have_count(len(PROMPTS))
    ids = [int(i.removeprefix("generation-")) for i in page.eval_on_selector_all(".tile", "els => els.map(e => e.id)")]
    watched.close()
    return ids


def tile(page, image_id):
    return page.locator(f"#generation-{image_id}")


def test_infinite_scroll_loads_the_next_page_when_its_end_comes_into_view(watched, base_url, images):
    page = watched.page
    page.set_viewport_size({"width": 390, "height": 400})  # two rows of tiles fill it: "Load more" is below
    page.goto(base_url + "/all/")
    page.wait_for_timeout(500)
    assert page.locator(".tile").count() == PAGE_SIZE  # nothing more until the end comes into view
    loads = watched.loads
    page.mouse.wheel(0, 5000)
    sync_api.expect(page.locator(".tile")).to_have_count(len(images))
    assert watched.loads == loads and page.locator(".load-more").count() == 0


def test_without_javascript_the_load_more_link_still_pages(browser, base_url, images):
    watched = signed_in(browser, base_url, MEMBER, javascript=False)
    page = watched.page
    page.goto(base_url + "/all/?sort=oldest")
    assert page.locator(".tile").count() == PAGE_SIZE
    page.click(".load-more a")
    assert "sort=oldest" in page.url and "before=" in page.url
    assert page.locator(".tile").count() == len(images) - PAGE_SIZE
    watched.close()


def test_star_and_rate_from_the_keyboard_then_filter_by_stars_and_sort_by_rating(watched, base_url, images):
    page = watched.page
    page.goto(base_url + "/all/")
    newest, second = images[0], images[1]
    page.focus(f"#generation-{newest} .tile-image")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#lightbox")).to_be_visible()
    page.keyboard.press("f")
    sync_api.expect(page.locator("#lightbox-star")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("4")
    sync_api.expect(page.locator("#lightbox-rating-summary")).to_have_text("4.0 ★ · 1 rating · yours 4")
    sync_api.expect(page.locator("[data-lightbox-rate='4']")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowRight")
    sync_api.expect(page.locator("#lightbox-star")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("2")
    sync_api.expect(page.locator("#lightbox-rating-summary")).to_have_text("2.0 ★ · 1 rating · yours 2")
    page.keyboard.press("0")  # cleared again
    sync_api.expect(page.locator("#lightbox-rating-summary")).to_have_text("")
    page.keyboard.press("5")
    sync_api.expect(page.locator("#lightbox-rating-summary")).to_have_text("5.0 ★ · 1 rating · yours 5")
    page.keyboard.press("Escape")
    # The tiles under the view already show it.
    sync_api.expect(tile(page, newest).locator(".star")).to_have_attribute("aria-pressed", "true")
    sync_api.expect(tile(page, second).locator("[data-rating-summary]")).to_have_text("5.0 ★ · 1 rating · yours 5")
    page.reload()  # and it was saved
    sync_api.expect(tile(page, newest).locator("[data-rating-summary]")).to_have_text("4.0 ★ · 1 rating · yours 4")

    page.check("#starred")
    sync_api.expect(page.locator("#gallery-count")).to_have_text("1 image matches these filters")
    assert "starred=1" in page.url
    sync_api.expect(page.locator(".tile")).to_have_count(1)
    page.uncheck("#starred")
    page.wait_for_url(base_url + "/all/")  # a clean address again
    page.select_option("#sort", "rating")
    page.wait_for_url(base_url + "/all/?sort=rating")
    # Rated 5, then 4, then the unrated newest first.
    sync_api.expect(page.locator(".tile").first).to_have_id(f"generation-{second}")
    sync_api.expect(page.locator(".tile").nth(1)).to_have_id(f"generation-{newest}")
    sync_api.expect(page.locator(".tile").nth(2)).to_have_id(f"generation-{images[2]}")
    page.reload()  # the address keeps the sort
    assert page.locator("#sort").input_value() == "rating"


def test_a_collection_from_a_selection_shared_with_the_team_is_rated_by_a_second_member(
        browser, base_url, images, sign_in_as):
    owner = sign_in_as(MEMBER).page
    owner.goto(base_url + "/all/")
    picked = images[:2]
    for image in picked:
        tile(owner, image).hover()
        tile(owner, image).locator(".tile-select").check()
    owner.fill("#bulk-new-name", "Client picks")
    owner.click("#bulk-collect")
    owner.wait_for_url(re.compile(r".*/all/\?collection=\d+$"))
    sync_api.expect(owner.locator(".collection-header h1")).to_have_text("Client picks")
    sync_api.expect(owner.locator(".tile")).to_have_count(2)
    collection_url = owner.url
    owner.click("text=Settings")
    owner.select_option("#visibility", "team-view")
    owner.click("button:has-text('Save')")
    owner.wait_for_url(collection_url)
    sync_api.expect(owner.locator(".collection-facts .badge")).to_have_text("The team can view")

    member = sign_in_as(ADA).page
    member.goto(base_url + "/collections/")
    member.click("text=Client picks")
    member.wait_for_url(re.compile(r".*/all/\?collection=\d+$"))  # loaded, its scripts run
    sync_api.expect(member.locator(".tile")).to_have_count(2)
    member.focus(f"#generation-{picked[0]} .tile-image")
    member.keyboard.press("Enter")
    member.keyboard.press("2")
    sync_api.expect(member.locator("#lightbox-rating-summary")).to_have_text("3.0 ★ · 2 ratings · yours 2")
    member.keyboard.press("ArrowRight")
    member.keyboard.press("5")
    sync_api.expect(member.locator("#lightbox-rating-summary")).to_have_text("5.0 ★ · 2 ratings · yours 5")
    member.keyboard.press("Escape")
    sync_api.expect(member.locator("#lightbox")).to_be_hidden()
    member.evaluate("window.scrollTo(0, 0)")
    screenshot(member, "collection-shared.png")
    # Every other image of the owner's answers 404, page, file, thumbnail and API alike; the shared ones open.
    for image in images:
        expected = 200 if image in picked else 404
        for path in (f"/images/{image}", f"/images/{image}/file", f"/images/{image}/thumb", f"/api/images/{image}"):
            assert member.request.get(base_url + path, max_redirects=0).status == expected, path
    assert "lighthouse" not in member.request.get(base_url + "/all/").text()
    owner.reload()  # the owner sees both reviewers' ratings
    sync_api.expect(tile(owner, picked[0]).locator("[data-rating-summary]")).to_have_text(
        "3.0 ★ · 2 ratings · yours 4")


def test_a_share_link_opens_signed_out_in_a_fresh_browser_and_shows_nothing_once_revoked(
        browser, base_url, images, watched):
    page = watched.page
    page.goto(base_url + f"/images/{images[3]}")
    page.select_option("[name=expires_in_days]", "1")
    page.click("button:has-text('Create share link')")
    url = page.input_value("#share-url")
    assert re.fullmatch(re.escape(base_url) + r"/s/[A-Za-z0-9_-]{32}", url)

    stranger = open_page(browser)
    view = stranger.page
    response = view.goto(url)
    assert response.status == 200 and response.headers["x-robots-tag"] == "noindex, nofollow"
    assert response.headers["referrer-policy"] == "no-referrer"
    sync_api.expect(view.locator("meta[name=robots]")).to_have_attribute("content", "noindex, nofollow")
    sync_api.expect(view.locator(".tile")).to_have_count(1)
    assert view.locator("header, nav").count() == 0 and MEMBER.email not in view.content()
    assert view.eval_on_selector(".tile img", "img => img.complete && img.naturalWidth") > 0
    view.click(".tile-image")
    sync_api.expect(view.locator("#lightbox-image")).to_have_attribute("src", re.compile(r"/s/.+/file$"))
    assert view.eval_on_selector("#lightbox-image", "img => img.decode().then(() => img.naturalWidth)") > 0
    sync_api.expect(view.locator("#lightbox-reuse")).to_be_hidden()
    sync_api.expect(view.locator("#lightbox-marks")).to_be_hidden()
    view.keyboard.press("Escape")
    file_url = base_url + view.get_attribute(".shared-actions a", "href")
    assert view.request.get(file_url).status == 200
    for other in images[:3]:
        assert view.request.get(f"{url}/images/{other}/file").status == 404

    page.goto(base_url + "/share-links/")
    page.click(f"tr:has(a[href='/images/{images[3]}']) button:has-text('Revoke')")
    sync_api.expect(page.locator(".flash")).to_contain_text("revoked")
    fresh = open_page(browser)
    fresh.expect_status(404)
    for address in (url, file_url, f"{url}/images/{images[3]}/thumb", f"{url}/images.zip"):
        assert fresh.page.goto(address).status == 404, address
    assert view.request.get(file_url).status == 404
    stranger.expect_status(404)
    stranger.close()
    fresh.close()
