"""The Edit pages: the menu on the detail page and in the larger view, one-click Vary and Upscale, each operation's
form pre-filled from the image and priced, refusals by their field with every value kept, the confirmation of
expensive ones, the mask, and landing on the new batch's page."""

import io
import re

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_images, make_user
from PIL import Image
from tests_support import csrf_for, row, sign_in

from app.extensions import db
from app.models import Generation
from app.providers.operations import OPERATIONS


@pytest.fixture
def image(app):
    """A finished 1:1 demo image with a known seed (the demo draws it 512 × 512)."""
    _, (image_id,) = make_images(app, "a lighthouse at dusk", seed=1234, model="sd3.5-large")
    return image_id


def results_of(app, source_id):
    with app.app_context():
        return db.session.scalars(sa.select(Generation).where(Generation.source_id == source_id)
                                  .order_by(Generation.id)).all()


def test_the_detail_page_has_vary_upscale_and_every_operation(client, image):
    page = client.get(f"/images/{image}").get_data(as_text=True)
    assert 'id="detail-edit"' in page and "Edit ▸" in page
    assert f'action="/images/{image}/edit/image-to-image"' in page and ">Vary<" in page
    assert f'action="/images/{image}/edit/upscale-fast"' in page and ">Upscale<" in page
    for name in OPERATIONS:
        assert f'href="/images/{image}/edit/{name}"' in page


def test_the_larger_view_links_carry_the_images_edit_address(client, image):
    gallery = client.get("/all/").get_data(as_text=True)
    assert f'data-view-edit="/images/{image}/edit/"' in gallery and 'id="lightbox-edit"' in gallery


def test_one_click_vary_queues_image_to_image_from_its_own_prompt_at_strength_0_6(app, client, image):
    response = client.post(f"/images/{image}/edit/image-to-image",
                           data={"csrf_token": csrf_for(client), "quick": "1", "expected_credits": "6.5"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/generate/")
    (result,) = results_of(app, image)
    assert (result.operation, result.prompt, result.operation_params["strength"]) == (
        "image-to-image", "a lighthouse at dusk", 0.6)
    assert result.requested_seed is None  # a variation: a new seed
    drain(app)
    assert row(app, result.id).status == "succeeded"


def test_one_click_upscale_is_upscale_fast(app, client, image):
    response = client.post(f"/images/{image}/edit/upscale-fast", data={"csrf_token": csrf_for(client), "quick": "1"})
    assert response.status_code == 303
    assert [g.operation for g in results_of(app, image)] == ["upscale-fast"]


def test_the_form_is_prefilled_from_the_image_with_the_price_and_allowance(client, image):
    page = client.get(f"/images/{image}/edit/image-to-image").get_data(as_text=True)
    assert re.search(r'<textarea[^>]*name="prompt"[^>]*>a lighthouse at dusk</textarea>', page)
    assert re.search(r'name="seed"[^>]*value="1234"', page) and re.search(r'name="strength"[^>]*value="0.6"', page)
    assert 'id="batch-cost"' in page and "6.5 credits" in page and 'id="allowance"' in page
    repriced = client.get(f"/images/{image}/edit/image-to-image?model=ultra").get_data(as_text=True)
    assert "= <strong>8 credits</strong>" in repriced


def test_a_refusal_is_shown_by_its_field_and_keeps_what_was_typed(app, client, image):
    response = client.post(f"/images/{image}/edit/image-to-image", data={
        "csrf_token": csrf_for(client), "prompt": "a storm over the sea", "strength": "1.7", "model": "ultra",
        "seed": "77"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="edit-strength-error">Strength must be between 0 and 1', page)
    assert ">a storm over the sea</textarea>" in page and 'value="77"' in page
    assert re.search(r'<option value="ultra" selected>', page)
    assert results_of(app, image) == []


def test_an_inpaint_without_a_painted_mask_says_to_paint_and_queues_nothing(app, client, image):
    response = client.post(f"/images/{image}/edit/inpaint", data={"csrf_token": csrf_for(client),
                                                                   "prompt": "a red boat"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert 'id="edit-error"' in response.get_data(as_text=True) and "Paint" in response.get_data(as_text=True)
    assert results_of(app, image) == []


def mask_png(size=(512, 512), box=(100, 100, 300, 300)) -> bytes:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_inpaint_with_a_mask_lands_on_the_batch_page(app, client, image):
    response = client.post(f"/images/{image}/edit/inpaint", data={
        "csrf_token": csrf_for(client), "prompt": "a red boat", "grow_mask": "5",
        "mask": (io.BytesIO(mask_png()), "mask.png", "image/png")}, content_type="multipart/form-data",
        headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/generate/")
    (result,) = results_of(app, image)
    assert result.operation == "inpaint" and result.mask_name


def test_a_mask_of_another_size_is_refused(app, client, image):
    response = client.post(f"/images/{image}/edit/erase", data={
        "csrf_token": csrf_for(client), "mask": (io.BytesIO(mask_png((1024, 1024))), "mask.png", "image/png")},
        content_type="multipart/form-data")
    assert response.status_code == 422 and "must be the image" in response.get_data(as_text=True)
    assert results_of(app, image) == []


def test_operations_of_40_credits_or_more_ask_for_a_confirmation_first(app, client, image):
    token = csrf_for(client)
    fields = {"csrf_token": token, "prompt": "sharper", "creativity": "0.35", "expected_credits": "40"}
    first = client.post(f"/images/{image}/edit/upscale-conservative", data=fields)
    assert first.status_code == 200 and "Press the button again to confirm" in first.get_data(as_text=True)
    assert 'name="confirmed" value="1"' in first.get_data(as_text=True)
    assert results_of(app, image) == []
    second = client.post(f"/images/{image}/edit/upscale-conservative", data={**fields, "confirmed": "1"})
    assert second.status_code == 303
    assert [g.operation for g in results_of(app, image)] == ["upscale-conservative"]


def test_outpaint_shows_the_four_way_pad(client, image):
    page = client.get(f"/images/{image}/edit/outpaint").get_data(as_text=True)
    assert 'id="outpaint-pad"' in page and 'id="outpaint-canvas"' in page
    for side in ("left", "right", "up", "down"):
        assert f'name="{side}"' in page


def test_a_stale_price_is_refused_and_the_new_one_shown(app, client, image):
    response = client.post(f"/images/{image}/edit/upscale-fast", data={"csrf_token": csrf_for(client),
                                                                        "expected_credits": "1"})
    assert response.status_code == 409 and "now 2 credits" in response.get_data(as_text=True)
    assert results_of(app, image) == []


def test_an_unknown_operation_or_someone_elses_image_is_a_404(accounts_app):
    make_user(accounts_app, "ann@example.com")
    make_user(accounts_app, "bob@example.com")
    _, (image_id,) = make_images(accounts_app, "ann's fox", owner_email="ann@example.com")
    ann, bob = accounts_app.test_client(), accounts_app.test_client()
    sign_in(ann, "ann@example.com")
    sign_in(bob, "bob@example.com")
    assert ann.get(f"/images/{image_id}/edit/image-to-image").status_code == 200
    assert ann.get(f"/images/{image_id}/edit/teleport").status_code == 404
    assert bob.get(f"/images/{image_id}/edit/image-to-image").status_code == 404
    assert bob.post(f"/images/{image_id}/edit/upscale-fast",
                    data={"csrf_token": csrf_for(bob), "quick": "1"}).status_code == 404


def test_several_ticked_images_get_one_operation_as_one_batch_after_seeing_its_price(app, client):
    _, ids = make_images(app, "a fox", "a wolf")
    confirm = client.get("/all/edit", query_string={"operation": "upscale-fast", "ids": ids})
    page = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "2 images × 2 credits" in page and 'id="allowance"' in page
    response = client.post("/all/edit", data={"csrf_token": csrf_for(client), "operation": "upscale-fast",
                                              "ids": ids, "expected_credits": "4"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/generate/")
    made = [g for source in ids for g in results_of(app, source)]
    assert {g.batch_id for g in made} == {int(response.headers["Location"].rsplit("/", 1)[1])}
    assert sorted(g.source_id for g in made) == sorted(ids) and {g.operation for g in made} == {"upscale-fast"}


def test_varying_several_keeps_each_images_own_prompt_unless_one_is_typed(app, client):
    _, ids = make_images(app, "a fox", "a wolf")
    assert 'name="prompt" rows="3"' in client.get("/all/edit", query_string={
        "operation": "image-to-image", "ids": ids}).get_data(as_text=True)
    own = client.post("/all/edit", data={"csrf_token": csrf_for(client), "operation": "image-to-image",
                                         "ids": ids, "prompt": " ", "expected_credits": "13"})
    assert own.status_code == 303
    assert sorted(g.prompt for source in ids for g in results_of(app, source)) == ["a fox", "a wolf"]
    typed = client.post("/all/edit", data={"csrf_token": csrf_for(client), "operation": "image-to-image",
                                           "ids": ids, "prompt": "in snow", "expected_credits": "13"})
    assert typed.status_code == 303
    batch_id = int(typed.headers["Location"].rsplit("/", 1)[1])
    assert {g.prompt for source in ids for g in results_of(app, source) if g.batch_id == batch_id} == {"in snow"}


def test_an_operation_not_offered_for_several_is_refused_back_to_the_gallery(app, client):
    _, ids = make_images(app, "a fox")
    response = client.get("/all/edit", query_string={"operation": "inpaint", "ids": ids})
    assert response.status_code == 303 and response.headers["Location"].startswith("/all/")


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operations_page_renders_priced_with_its_fields(client, image, operation):
    response = client.get(f"/images/{image}/edit/{operation}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="batch-cost"' in page and "credits" in page
    for spec in OPERATIONS[operation].fields:
        assert f'name="{spec.name}"' in page, spec.name
