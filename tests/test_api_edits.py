"""POST /api/images/{id}/edits and POST /api/edits, the lineage in GET /api/images/{id}, and `flask edit`."""

from __future__ import annotations

import base64
import io

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_images, make_token, make_user
from PIL import Image
from tests_support import bearer

from app.accounts.users import local_user, require_user
from app.extensions import db
from app.generations import edits, spending
from app.models import Generation, IdempotentRequest, Status


@pytest.fixture
def ann(accounts_app):
    """A member with a token and an image of hers (512 × 512, from the demo provider)."""
    make_user(accounts_app, "ann@example.com")
    _, (gid,) = make_images(accounts_app, "a lighthouse", owner_email="ann@example.com")
    return accounts_app.test_client(), bearer(make_token(accounts_app, "ann@example.com")), gid


def used(app, email="ann@example.com"):
    with app.app_context():
        return spending.used(spending.user_scope(require_user(email).id))


def count(app):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Generation))


def mask_b64(width=512, height=512) -> str:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (10, 10, 100, 100))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_edit_answers_201_with_the_batch_each_generation_naming_its_operation_and_source(accounts_app, ann):
    client, auth, gid = ann
    before = used(accounts_app)
    response = client.post(f"/api/images/{gid}/edits", json={"operation": "upscale-fast"}, headers=auth)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == body["url"]
    (made,) = body["generations"]
    assert made["operation"] == "upscale-fast" and made["source_id"] == gid and made["status"] == "queued"
    assert body["cost"]["credits_per_image"] == 2 and used(accounts_app) == before + 2
    drain(accounts_app)
    image = client.get(f"/api/images/{made['id']}", headers=auth).get_json()
    assert (image["operation"], image["source_id"], image["width"], image["height"]) == (
        "upscale-fast", gid, 2048, 2048)
    source = client.get(f"/api/images/{gid}", headers=auth).get_json()
    assert (source["operation"], source["source_id"], source["width"]) == ("generate", None, 512)


def test_an_inpaint_takes_its_mask_as_base64_and_vary_keeps_the_images_prompt(accounts_app, ann):
    client, auth, gid = ann
    inpaint = client.post(f"/api/images/{gid}/edits", json={"operation": "inpaint", "prompt": "a boat",
                                                             "mask": mask_b64()}, headers=auth)
    assert inpaint.status_code == 201, inpaint.get_json()
    vary = client.post(f"/api/images/{gid}/edits", json={"operation": "vary"}, headers=auth)
    assert vary.status_code == 201
    (varied,) = vary.get_json()["generations"]
    assert varied["prompt"] == "a lighthouse" and varied["operation"] == "image-to-image"
    drain(accounts_app)
    with accounts_app.app_context():
        assert db.session.get(Generation, varied["id"]).operation_params == {"strength": 0.6}
        assert {g.status for g in db.session.scalars(sa.select(Generation))} == {Status.SUCCEEDED}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"operation": "outpaint", "left": 1500}, "left", "wider than 2.5:1"),
    ({"operation": "inpaint", "prompt": "a boat", "mask": mask_b64(100, 100)}, "mask", "image's size"),
    ({"operation": "inpaint", "prompt": "a boat", "mask": "@@@"}, "mask", "base64"),
    ({"operation": "image-to-image", "prompt": "x", "strength": 0.5, "creativity": 0.3}, "creativity", "takes no"),
    ({"operation": "search-and-replace", "prompt": "x"}, "search_prompt", "required"),
    ({"operation": "sharpen"}, "operation", "Unknown operation"),
    ({"operation": "image-to-image", "prompt": "x", "strength": 2}, "strength", "between"),
    ({"operation": "style-transfer", "style_image": 10 ** 30}, "style_image", "another image of yours"),
])
def test_a_refused_edit_answers_422_naming_the_field_and_charges_nothing(accounts_app, ann, body, field, words):
    client, auth, gid = ann
    before, rows = used(accounts_app), count(accounts_app)
    response = client.post(f"/api/images/{gid}/edits", json=body, headers=auth)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    # Text that is no base64 breaks the schema's pattern; the rest are the operation's own rules.
    code = "validation_failed" if words == "base64" else "edit_refused"
    assert error["code"] == code and words in error["fields"][field], error
    assert used(accounts_app) == before and count(accounts_app) == rows


def test_an_image_outside_the_endpoints_limits_is_refused_next_to_the_image(accounts_app, ann):
    client, auth, gid = ann
    with accounts_app.app_context():
        db.session.get(Generation, gid).width = 20
        db.session.commit()
    response = client.post(f"/api/images/{gid}/edits", json={"operation": "upscale-fast"}, headers=auth)
    assert response.status_code == 422 and "at least 32 px" in response.get_json()["error"]["fields"]["image"]


def test_someone_elses_image_answers_404(accounts_app, ann):
    client, _, gid = ann
    make_user(accounts_app, "bob@example.com")
    bob = bearer(make_token(accounts_app, "bob@example.com"))
    assert client.post(f"/api/images/{gid}/edits", json={"operation": "upscale-fast"}, headers=bob).status_code == 404
    response = client.post("/api/edits", json={"operation": "upscale-fast", "image_ids": [gid]}, headers=bob)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert count(accounts_app) == 1


def test_several_images_make_one_batch_and_one_refused_image_refuses_them_all(accounts_app, ann):
    client, auth, gid = ann
    _, (other,) = make_images(accounts_app, "a harbour", owner_email="ann@example.com")
    response = client.post("/api/edits", json={"operation": "remove-background", "image_ids": [gid, other]},
                           headers=auth)
    assert response.status_code == 201
    assert [(g["source_id"], g["operation"]) for g in response.get_json()["generations"]] == [
        (gid, "remove-background"), (other, "remove-background")]
    with accounts_app.app_context():
        db.session.get(Generation, other).width = 3000
        db.session.get(Generation, other).height = 3000
        db.session.commit()
    before, rows = used(accounts_app), count(accounts_app)
    refused = client.post("/api/edits", json={"operation": "remove-background", "image_ids": [gid, other]},
                          headers=auth)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["image_ids"].startswith(f"Image {other}: ")
    assert used(accounts_app) == before and count(accounts_app) == rows


def test_the_price_shown_and_the_idempotency_key_are_honoured(accounts_app, ann):
    client, auth, gid = ann
    body = {"operation": "upscale-conservative", "prompt": "crisp", "expected_credits": 25}
    stale = client.post(f"/api/images/{gid}/edits", json=body, headers=auth)
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "price_changed"
    body["expected_credits"] = 40
    key = {**auth, "Idempotency-Key": "edit-1"}
    first = client.post(f"/api/images/{gid}/edits", json=body, headers=key)
    again = client.post(f"/api/images/{gid}/edits", json=body, headers=key)
    assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(accounts_app) == 2
    with accounts_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotentRequest)) == 1


def test_over_the_allowance_answers_402(accounts_app):
    make_user(accounts_app, "cy@example.com", monthly_credits=30)
    _, (gid,) = make_images(accounts_app, "a lighthouse", owner_email="cy@example.com")
    client, auth = accounts_app.test_client(), bearer(make_token(accounts_app, "cy@example.com"))
    response = client.post(f"/api/images/{gid}/edits", json={"operation": "upscale-conservative", "prompt": "x"},
                           headers=auth)
    assert response.status_code == 402 and count(accounts_app) == 1


def test_deleting_a_source_keeps_its_results_which_then_name_no_source(accounts_app, ann):
    client, auth, gid = ann
    made = client.post(f"/api/images/{gid}/edits", json={"operation": "upscale-fast"}, headers=auth).get_json()
    drain(accounts_app)
    result_id = made["generations"][0]["id"]
    assert client.delete(f"/api/images/{gid}", headers=auth).status_code == 204
    image = client.get(f"/api/images/{result_id}", headers=auth)
    assert image.status_code == 200 and image.get_json()["source_id"] is None


def test_flask_edit_queues_the_operation_and_refuses_what_the_api_would(app):
    _, (gid,) = make_images(app, "a lighthouse")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["edit", str(gid), "outpaint", "--set", "left=128", "--prompt", "more sea"])
    assert result.exit_code == 0 and "1 image queued" in result.output, result.output
    drain(app)
    with app.app_context():
        made = db.session.scalars(sa.select(Generation).where(Generation.source_id == gid)).one()
        assert (made.status, made.operation, made.prompt, made.width) == (Status.SUCCEEDED, "outpaint", "more sea", 640)
    refused = runner.invoke(args=["edit", str(gid), "outpaint", "--set", "left=5000"])
    assert refused.exit_code == 2 and "left: " in refused.output and "Nothing was made" in refused.output
    missing = runner.invoke(args=["edit", "999999", "upscale-fast"])
    assert missing.exit_code == 1 and "not a finished image" in missing.output


def test_the_pages_show_an_operations_batch_and_its_result(app):
    _, (gid,) = make_images(app, "a lighthouse")
    client = app.test_client()
    with app.test_request_context():
        batch = edits.create_edit_batch(local_user(), [gid], "upscale-fast", {})
        batch_id, eid = batch.id, batch.generations[0].id
    assert client.get(f"/generate/{batch_id}").status_code == 200
    drain(app)
    for path in (f"/generate/{batch_id}", f"/generate/{batch_id}/status", f"/images/{eid}", f"/images/{eid}/file",
                 f"/images/{eid}/thumb", "/all/", f"/generate/{batch_id}/images.zip", f"/images/{gid}"):
        assert client.get(path).status_code == 200, path
