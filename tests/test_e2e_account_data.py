"""A member's data leaving, in a real browser against the real stack: "Export everything" downloads the ZIP, then
"Delete my account" asks for the password, signs out, and the worker removes every file."""

import io
import json
import zipfile

import pytest
from browser_stack import ADMIN, BOB, card, e2e_stack, submit_prompts, sync_api

pytestmark = pytest.mark.e2e
PROMPT = "a lighthouse to take along"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """This module's own stack (its member is deleted), and the folder its images are written to."""
    tmp = tmp_path_factory.mktemp("e2e-data")
    with e2e_stack(tmp) as url:
        yield url, tmp / "media"


@pytest.fixture(scope="module")
def base_url(stack):
    return stack[0]


def files_in(media):
    return sorted(path for path in media.rglob("*") if path.is_file()) if media.exists() else []


def test_a_member_exports_everything_then_deletes_the_account_with_their_password(stack, sign_in_as):
    base_url, media = stack
    member = sign_in_as(BOB)
    page = member.page
    submit_prompts(page, base_url, [PROMPT])
    sync_api.expect(card(page, 0)).to_have_attribute("data-status", "succeeded", timeout=30_000)
    assert len(files_in(media)) == 2  # the image and its thumbnail
    page.goto(base_url + "/account")
    with page.expect_download() as download:
        page.click("text=Export everything")
    archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    manifest = json.loads(archive.read("manifest.json"))
    assert [entry["prompt"] for entry in manifest["generations"]] == [PROMPT]
    assert manifest["generations"][0]["file"] in archive.namelist() and len(archive.namelist()) == 2

    page.click("text=Delete my account")
    sync_api.expect(page.locator("h1")).to_have_text("Delete your account?")
    member.expect_status(422)
    page.fill("#password", "not my password")
    page.click("button:has-text('Delete my account')")
    sync_api.expect(page.locator("#password-error")).to_have_text("That is not your password; nothing was deleted.")
    page.fill("#password", BOB.password)
    page.click("button:has-text('Delete my account')")
    page.wait_for_url(base_url + "/login")
    sync_api.expect(page.locator(".flash")).to_contain_text("Your account is being deleted")
    member.expect_status(401)
    page.fill("#email", BOB.email)
    page.fill("#password", BOB.password)
    page.click("button:has-text('Sign in')")
    sync_api.expect(page.locator("#password-error")).to_have_text("Wrong email or password.")

    admin = sign_in_as(ADMIN).page
    deadline_ms = 30_000
    admin.goto(base_url + "/admin/users")
    for _ in range(deadline_ms // 500):
        if BOB.email not in admin.content():
            break
        admin.wait_for_timeout(500)
        admin.reload()
    assert BOB.email not in admin.content()
    assert files_in(media) == []
