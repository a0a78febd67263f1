"""axe-core over every page, light and dark, at 1280 px and 390 px: zero serious or critical violations."""

import pytest
from accessibility import serious_violations
from browser_stack import ADMIN, MEMBER, Watched, card, sign_in, submit_prompts, sync_api

pytestmark = pytest.mark.e2e

SCHEMES = ("light", "dark")
WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def made(browser, base_url) -> dict[str, int]:
    """A finished batch with one image and one refused prompt: the ids the pages below show."""
    watched = Watched(browser.new_context(viewport={"width": 1280, "height": 860}).new_page())
    sign_in(watched, base_url, MEMBER)
    submit_prompts(watched.page, base_url, ["a lighthouse for axe", "a refused one [moderate]"])
    for position, status in ((0, "succeeded"), (1, "failed")):
        sync_api.expect(card(watched.page, position)).to_have_attribute("data-status", status, timeout=30_000)
    ids = {"batch": int(watched.page.url.rstrip("/").rsplit("/", 1)[1]),
           "image": int(card(watched.page, 0).get_attribute("id").removeprefix("generation-"))}
    watched.close()
    return ids


def member_pages(made: dict[str, int]) -> list[str]:
    """Every page a member reaches, with content in it."""
    image = made["image"]
    return ["/", f"/generate/{made['batch']}", "/all/", "/all/?q=nothing-matches-this", f"/images/{image}",
            f"/images/{image}?size=actual", f"/images/{image}/delete", f"/all/delete?ids={image}", "/account",
            "/account/tokens", "/account/delete", "/images/2147483000", "/wildcards/", "/account/webhooks",
            "/account/usage"]


def check(page, url: str, problems: list[str]) -> None:  # noqa: ANN001
    """Open url and add axe's serious violations there to problems."""
    page.goto(url)
    problems.extend(f"{url}: {line}" for line in serious_violations(page))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_page_has_no_serious_accessibility_violations(browser, base_url, made, scheme, width):
    problems: list[str] = []

    def context() -> Watched:
        phone = {"has_touch": True, "is_mobile": True} if width < 600 else {}  # a phone: no hover, as the pages see it
        return Watched(browser.new_context(viewport={"width": width, "height": 860}, color_scheme=scheme,
                                           **phone).new_page())

    signed_out = context()
    check(signed_out.page, base_url + "/login", problems)
    signed_out.close()

    member = context()
    member.expect_status(404)  # the missing image's page is one of those checked
    sign_in(member, base_url, MEMBER)
    for path in member_pages(made):
        check(member.page, base_url + path, problems)
    # A tile's folded actions, open (on a phone they are behind one tap).
    member.page.goto(base_url + "/all/")
    member.page.locator(".tile-tools").first.evaluate("el => { el.open = true; }")
    problems.extend(f"/all/ (a tile's actions open): {line}" for line in serious_violations(member.page))
    # The larger view, open over the gallery (a link with ?view= opens it on load).
    member.page.goto(f"{base_url}/all/?view={made['image']}")
    sync_api.expect(member.page.locator("dialog[open]")).to_have_count(1)
    problems.extend(f"/all/?view (open): {line}" for line in serious_violations(member.page))
    # The home form refusing an empty batch: its messages are markup too.
    member.page.goto(base_url + "/")
    member.expect_status(422)
    member.page.click("button[name=generate]")
    problems.extend(f"/ (refused): {line}" for line in serious_violations(member.page))
    member.close()

    admin = context()
    sign_in(admin, base_url, ADMIN)
    for path in ("/admin/users", "/admin/usage", "/all/", "/api/docs"):
        check(admin.page, base_url + path, problems)
    # The confirmation before deleting someone's account.
    admin.page.goto(base_url + "/admin/users")
    delete_member = admin.page.locator(f"a[href$='/delete']:has-text('{MEMBER.email}')").get_attribute("href")
    check(admin.page, base_url + delete_member, problems)
    admin.close()
    assert not problems, "\n".join(problems)
