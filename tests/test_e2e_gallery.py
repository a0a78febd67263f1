"""The gallery in headless Chromium against the real stack: justified rows of mixed shapes, quick actions by
keyboard, selecting several (click and shift-click) to delete or download (a ZIP of dated files), the Search button's
alignment, a cleared search's address, and on a phone the filters and each tile's actions folded behind one tap."""

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from browser_stack import MEMBER, Watched, e2e_stack, generation_id, screenshot, sign_in, signed_in, sync_api

pytestmark = pytest.mark.e2e

PAGE_SIZE = 10
# One batch per image, the shapes interleaved so rows mix wide, square and tall tiles.
RATIOS = ["16:9", "1:1", "9:21", "3:2", "21:9", "2:3", "4:5", "16:9", "1:1", "9:16", "5:4", "3:2", "2:3", "9:16"]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """This module's own stack, with pages long enough to show rows (the shared default is 3 a page)."""
    with e2e_stack(tmp_path_factory.mktemp("e2e-gallery"), page_size=PAGE_SIZE) as url:
        yield url


@pytest.fixture(scope="module")
def gallery(browser, base_url) -> int:
    """The member's images of RATIOS, all made; returns how many."""
    watched = signed_in(browser, base_url, MEMBER)
    page = watched.page
    for index, ratio in enumerate(RATIOS):
        page.goto(base_url + "/")
        page.fill("#prompts-0", f"shape {index}: a {ratio} view of hills and a lighthouse")
        page.select_option("#aspect_ratio", ratio)
        page.click("button[name=generate]")
        page.wait_for_url("**/generate/*")
    sync_api.expect(page.locator(".card")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    page.goto(base_url + "/all/")
    sync_api.expect(page.locator("#gallery-count")).to_have_text(f"{len(RATIOS)} images", timeout=60_000)
    watched.close()
    return len(RATIOS)


def rows_of(page) -> list[list[dict]]:
    """The gallery's items (tiles and 'Load more') grouped into rows by their top edge, left to right."""
    items = page.eval_on_selector_all(".gallery > li", """els => els.map(e => {
        const r = e.getBoundingClientRect(), image = e.querySelector('.tile-image');
        return {left: r.left, right: r.right, top: Math.round(r.top), shape: e.className,
                imageHeight: image ? image.getBoundingClientRect().height : null};
    })""")
    rows: dict[int, list[dict]] = {}
    for item in items:
        rows.setdefault(item["top"], []).append(item)
    return [sorted(row, key=lambda item: item["left"]) for _, row in sorted(rows.items())]


def assert_justified(page) -> list[list[dict]]:
    """Every row but the last fills the gallery edge to edge with tiles of one height; the last is not stretched."""
    box = page.locator("#gallery-grid").bounding_box()
    rows = rows_of(page)
    assert len(rows) >= 2, rows
    for row in rows[:-1]:
        assert abs(row[0]["left"] - box["x"]) <= 1.5, row
        assert abs(row[-1]["right"] - (box["x"] + box["width"])) <= 1.5, row
        heights = [item["imageHeight"] for item in row]
        assert max(heights) - min(heights) <= 1.5, row  # one height per row: no holes under wide images
    full_height = max(item["imageHeight"] for row in rows[:-1] for item in row)
    assert all(item["imageHeight"] is None or item["imageHeight"] <= full_height + 1.5 for item in rows[-1]), rows
    return rows


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (390, "dark")])
def test_tiles_of_mixed_shapes_fill_their_rows_edge_to_edge_and_load_more_appends(browser, base_url, gallery,
                                                                                  width, scheme):
    watched = signed_in(browser, base_url, MEMBER)
    page = watched.page
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    page.goto(base_url + "/all/")
    rows = assert_justified(page)
    assert any(len({item["shape"] for item in row}) > 1 for row in rows[:-1])  # rows really mix shapes
    assert page.locator(".tile").count() == PAGE_SIZE
    first_page = page.eval_on_selector_all(".tile", "els => els.map(e => e.id)")
    loads = watched.loads
    if width == 1280:
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "gallery.png")
    # Infinite scroll: the next page comes once "Load more" is in view (hx-trigger="revealed"), with no click.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    sync_api.expect(page.locator(".tile")).to_have_count(gallery)
    both = page.eval_on_selector_all(".tile", "els => els.map(e => e.id)")
    assert both[:PAGE_SIZE] == first_page and len(set(both)) == gallery
    assert watched.loads == loads  # appended in place
    assert_justified(page)
    watched.close()


def test_the_search_button_lines_up_with_the_inputs_beside_it(watched, base_url, gallery):
    page = watched.page
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(base_url + "/all/")
        if width == 390:
            page.click(".filters-fold summary")  # folded on a phone
        search = page.locator(".gallery-filters button").bounding_box()
        field = page.locator("#q").bounding_box()
        if abs(search["y"] - field["y"]) < field["height"]:  # side by side (on a phone it may wrap below)
            assert abs(search["y"] - field["y"]) <= 1 and abs(search["height"] - field["height"]) <= 1, (search, field)


def test_quick_actions_appear_on_keyboard_focus_and_work_from_the_keyboard(watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    page.mouse.move(1, 1)
    first = page.locator(".tile").first
    prompt = first.locator(".tile-prompt").inner_text()
    sync_api.expect(first.locator(".tile-actions")).to_have_css("opacity", "0")
    first.locator(".tile-image").focus()
    page.keyboard.press("Tab")
    sync_api.expect(first.locator(".tile-select")).to_be_focused()
    sync_api.expect(first.locator(".tile-actions")).to_have_css("opacity", "1")
    sync_api.expect(first.locator(".tile-caption")).to_have_css("opacity", "1")
    page.keyboard.press("Tab")
    sync_api.expect(first.get_by_role("link", name="Download")).to_be_focused()
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert re.fullmatch(r"\d\d-shape-\d+.*\.png", download.value.suggested_filename)
    page.keyboard.press("Tab")
    sync_api.expect(first.get_by_role("link", name="Reuse")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/?reuse=*")
    sync_api.expect(page.locator("#prompts-0")).to_have_value(prompt)

    page.goto(base_url + "/all/")
    count = int(page.inner_text("#gallery-count").split()[0])
    first = page.locator(".tile").first
    doomed = first.get_attribute("id")
    first.get_by_role("link", name="Delete").focus()
    page.once("dialog", lambda dialog: dialog.accept())
    loads = watched.loads
    page.keyboard.press("Enter")
    sync_api.expect(page.locator(f"#{doomed}")).to_have_count(0)
    sync_api.expect(page.locator("#gallery-count")).to_have_text(f"{count - 1} images")
    announcement = page.locator("#gallery-announcement")
    sync_api.expect(announcement).to_have_text("Deleted 1 image.")
    sync_api.expect(announcement).to_have_css("font-weight", "400")  # plain, as the bar's other words
    assert watched.loads == loads
    page.locator(".tile-select").first.check()  # the selection changed: the message has had its turn
    sync_api.expect(announcement).to_have_text("")
    sync_api.expect(announcement).to_be_hidden()


def test_on_a_phone_filters_and_each_tiles_actions_fold_behind_one_tap_and_delete_asks_on_a_page(
        browser, base_url, gallery):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    watched = Watched(context.new_page())
    sign_in(watched, base_url, MEMBER)
    page = watched.page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(base_url + "/all/")
    tiles = page.locator(".tile")
    # The first screen shows images, not the search form.
    sync_api.expect(page.locator("#q")).to_be_hidden()
    assert tiles.first.bounding_box()["y"] < 844 / 2
    # A tile shows one control; its box and actions are behind it, and only one tile's are open at a time.
    first, second = tiles.nth(0), tiles.nth(1)
    for hidden in (first.locator(".tile-check"), first.get_by_role("link", name="Delete"),
                   first.get_by_role("link", name="Download")):
        sync_api.expect(hidden).to_be_hidden()
    first.locator("summary", has_text="Actions for").tap()
    for shown in ("Download", "Reuse", "Delete"):
        sync_api.expect(first.get_by_role("link", name=shown)).to_be_visible()
    second.locator("summary", has_text="Actions for").tap()
    sync_api.expect(second.get_by_role("link", name="Delete")).to_be_visible()
    sync_api.expect(first.get_by_role("link", name="Delete")).to_be_hidden()
    screenshot(page, "gallery-phone.png")
    page.locator(".filters-fold summary").tap()  # the search is one tap away
    sync_api.expect(page.locator("#q")).to_be_visible()
    # Ticking one shows every box, so the next ones take one tap each.
    second.locator(".tile-select").tap()
    sync_api.expect(page.locator("#bulk-selected")).to_have_text("1 selected")
    first.locator(".tile-select").tap()
    sync_api.expect(page.locator("#bulk-selected")).to_have_text("2 selected")
    # Delete opens its confirm page, not a dialog over the grid; "Keep it" deletes nothing.
    doomed = generation_id(second)
    second.get_by_role("link", name="Delete").tap()
    page.wait_for_url(f"{base_url}/images/{doomed}/delete")
    sync_api.expect(page.locator("h1")).to_have_text("Delete this image?")
    page.get_by_role("link", name="Keep it").tap()
    page.wait_for_url(f"{base_url}/images/{doomed}")
    assert dialogs == [] and page.request.get(f"{base_url}/images/{doomed}").status == 200
    watched.close()


def test_with_a_mouse_the_filters_are_open_and_a_cleared_search_leaves_a_clean_address(watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    sync_api.expect(page.locator("#q")).to_be_visible()  # wide windows: nothing folded
    sync_api.expect(page.locator(".filters-fold summary")).to_be_hidden()
    loads = watched.loads
    page.fill("#q", "shape 1")
    sync_api.expect(page).to_have_url(f"{base_url}/all/?q=shape+1")
    page.select_option("#model", "core")
    sync_api.expect(page).to_have_url(re.compile(r"/all/\?q=shape\+1&model=core$"))
    page.fill("#q", "")
    sync_api.expect(page).to_have_url(f"{base_url}/all/?model=core")
    page.select_option("#model", "")
    sync_api.expect(page).to_have_url(f"{base_url}/all/")  # not ?q=&status=&model=
    sync_api.expect(page.locator("#gallery-count")).to_have_text(re.compile(r"^\d+ images$"))
    assert watched.loads == loads


def test_without_javascript_a_cleared_search_leaves_a_clean_address_too(browser, base_url, gallery):
    watched = signed_in(browser, base_url, MEMBER, javascript=False)
    page = watched.page
    page.goto(base_url + "/all/?q=shape")
    page.fill("#q", "")
    with page.expect_navigation():
        page.click(".gallery-filters button")
    assert page.url == f"{base_url}/all/"
    watched.close()


def test_select_with_a_click_and_a_shift_click_range_then_delete_them_in_place(watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    count = int(page.inner_text("#gallery-count").split()[0])
    tiles = page.locator(".tile")
    ids = [tiles.nth(i).get_attribute("id") for i in range(6)]
    sync_api.expect(page.locator("#bulk-delete")).to_be_disabled()
    tiles.nth(1).locator(".tile-select").click()
    tiles.nth(4).locator(".tile-select").click(modifiers=["Shift"])  # ticks 1 to 4
    sync_api.expect(page.locator("#bulk-selected")).to_have_text("4 selected")
    assert [tiles.nth(i).locator(".tile-select").is_checked() for i in range(6)] == [
        False, True, True, True, True, False]
    tiles.nth(3).locator(".tile-select").click()  # a plain click takes one back out
    sync_api.expect(page.locator("#bulk-selected")).to_have_text("3 selected")
    screenshot(page, "gallery-selected.png")
    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    loads = watched.loads
    page.click("#bulk-delete")
    for gone in (ids[1], ids[2], ids[4]):
        sync_api.expect(page.locator(f"#{gone}")).to_have_count(0)
    assert messages == ["Delete these 3 images? This cannot be undone."]
    sync_api.expect(page.locator("#gallery-count")).to_have_text(f"{count - 3} images")
    sync_api.expect(page.locator("#bulk-selected")).to_have_text("None selected")
    assert [page.locator(f"#{kept}").count() for kept in (ids[0], ids[3], ids[5])] == [1, 1, 1]
    assert watched.loads == loads  # deleted without a page load
    for gone in (ids[1], ids[2], ids[4]):
        assert page.request.get(base_url + "/images/" + gone.removeprefix("generation-")).status == 404


def test_download_selected_gives_one_zip_of_the_ticked_images(watched, base_url, gallery):
    page = watched.page
    page.goto(base_url + "/all/")
    tiles = page.locator(".tile")
    tiles.nth(0).locator(".tile-select").click()
    tiles.nth(1).locator(".tile-select").click()
    with page.expect_download() as download:
        page.click("#bulk-download")
    with open(download.value.path(), "rb") as file:
        archive = zipfile.ZipFile(io.BytesIO(file.read()))
    expected = [tiles.nth(i).get_attribute("id").removeprefix("generation-") for i in range(2)]
    assert [name.split("-")[0] for name in archive.namelist()] == expected
    now = datetime.now(UTC).replace(tzinfo=None)
    for info in archive.infolist():  # dated when each image was made (this run), not 1980-01-01
        assert timedelta(0) <= now - datetime(*info.date_time) < timedelta(hours=1), info.date_time


def test_without_javascript_bulk_delete_asks_on_a_page_and_keeps_the_search(browser, base_url, gallery):
    watched = signed_in(browser, base_url, MEMBER, javascript=False)
    page = watched.page
    page.goto(base_url + "/all/?q=lighthouse")
    before = page.inner_text("#gallery-count")
    count = int(before.split()[0])
    tiles = page.locator(".tile")
    ids = [tiles.nth(i).get_attribute("id") for i in range(2)]
    for i in range(2):
        tiles.nth(i).locator(".tile-select").check()
    page.click("#bulk-delete")
    page.wait_for_url("**/all/delete?*")
    sync_api.expect(page.locator("h1")).to_have_text("Delete these 2 images?")
    page.click("button:has-text('Delete 2 images')")
    page.wait_for_url("**/all/?q=lighthouse")
    sync_api.expect(page.locator(".flashes")).to_contain_text("Deleted 2 images.")
    sync_api.expect(page.locator("#gallery-count")).to_have_text(f"{count - 2} images match “lighthouse”")
    assert all(page.locator(f"#{gone}").count() == 0 for gone in ids)
    watched.close()
