"""The domain of images made from images: prices, the checks before a charge, and the batch of one per source."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_images, make_user
from PIL import Image

from app.accounts.users import local_user, require_user
from app.extensions import db
from app.generations import edits, lifecycle, spending
from app.generations.edits import EditRefused
from app.models import Generation, MonthlySpend, Status


def png(width: int, height: int, painted: bool = True) -> bytes:
    """A mask PNG: white where painted (a square in the middle), black elsewhere."""
    mask = Image.new("L", (width, height), 0)
    if painted:
        mask.paste(255, (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def sized(app, gid: int, width: int, height: int) -> Generation:
    """The source row as if its image were this size (the checks read the row's width and height)."""
    source = db.session.get(Generation, gid)
    source.width, source.height = width, height
    return source


@pytest.mark.parametrize(("operation", "params", "credits"), [
    ("upscale-fast", {}, 2), ("upscale-creative", {}, 60), ("image-to-image", {}, 6.5),
    ("image-to-image", {"model": "sd3.5-flash"}, 2.5), ("image-to-image", {"model": "ultra"}, 8),
    ("vary", {}, 6.5), ("upscale", {}, 2), ("outpaint", {}, 4),
])
def test_an_edit_costs_its_operations_price_and_image_to_image_its_models(operation, params, credits):
    assert edits.price_of_edit(operation, params) == credits


def test_an_unknown_operation_is_refused_next_to_the_operation_field():
    with pytest.raises(EditRefused) as refused:
        edits.price_of_edit("sharpen", {})
    assert refused.value.field == "operation"


def test_fields_are_normalised_with_their_defaults(app):
    _, (gid,) = make_images(app, "a lighthouse")
    with app.app_context():
        source = db.session.get(Generation, gid)
        assert edits.check_edit(source, "image-to-image", {"prompt": "  a lighthouse at dusk "}, None) == {
            "prompt": "a lighthouse at dusk", "strength": 0.6, "model": "sd3.5-large", "output_format": "png"}
        assert edits.check_edit(source, "outpaint", {"left": "256"}, None) == {
            "left": 256, "right": 0, "up": 0, "down": 0, "creativity": 0.5, "output_format": "png"}


@pytest.mark.parametrize(("operation", "params", "field"), [
    ("image-to-image", {"prompt": ""}, "prompt"),
    ("image-to-image", {"prompt": "x", "strength": 1.5}, "strength"),
    ("image-to-image", {"prompt": "x", "model": "core"}, "model"),
    ("image-to-image", {"prompt": "x", "cfg_scale": 4, "model": "ultra"}, "cfg_scale"),
    ("upscale-conservative", {"prompt": "x", "creativity": 0.9}, "creativity"),
    ("search-and-replace", {"prompt": "a cat"}, "search_prompt"),
    ("outpaint", {}, "left"),
    ("outpaint", {"left": 2001}, "left"),
    ("outpaint", {"left": 1000, "right": 400}, "left"),  # 1,912 × 512: wider than 2.5:1
    ("upscale-fast", {"prompt": "x"}, "prompt"),  # takes no prompt
    ("remove-background", {"output_format": "jpeg"}, "output_format"),
    ("image-to-image", {"prompt": "a\x00b"}, "prompt"),
    ("erase", {}, "mask"),
    ("style-transfer", {}, "style_image"),
    ("style-transfer", {"style_image": 999_999}, "style_image"),
])
def test_a_wrong_field_is_refused_next_to_it(app, operation, params, field):
    _, (gid,) = make_images(app, "a lighthouse")
    with app.app_context(), pytest.raises(EditRefused) as refused:
        edits.check_edit(db.session.get(Generation, gid), operation, params, None)
    assert refused.value.field == field, refused.value.message


@pytest.mark.parametrize(("mask", "words"), [
    (png(100, 100), "must be the image's size, 512 × 512"), (png(512, 512, painted=False), "empty"),
    (b"not a png", "not a readable PNG"),
])
def test_a_mask_must_be_a_painted_png_of_the_images_size(app, mask, words):
    _, (gid,) = make_images(app, "a lighthouse")
    with app.app_context(), pytest.raises(EditRefused) as refused:
        edits.check_edit(db.session.get(Generation, gid), "inpaint", {"prompt": "a boat"}, mask)
    assert refused.value.field == "mask" and words in refused.value.message


@pytest.mark.parametrize(("operation", "params", "size", "words"), [
    ("upscale-fast", {}, (20, 1000), "at least 32 px"),
    ("upscale-fast", {}, (30, 30), "at least 32 px"),
    ("inpaint", {"prompt": "x"}, (4000, 3000), "at most 9 MP"),
    ("search-and-replace", {"prompt": "x", "search_prompt": "y"}, (2000, 700), "1:2.5 to 2.5:1"),
    ("remove-background", {}, (2100, 2100), "at most 4 MP"),
])
def test_a_source_outside_the_endpoints_limits_is_refused_with_the_reason(app, operation, params, size, words):
    _, (gid,) = make_images(app, "a lighthouse")
    with app.app_context(), pytest.raises(EditRefused) as refused:
        source = sized(app, gid, *size)
        edits.check_edit(source, operation, params, png(*size) if operation == "inpaint" else None)
    assert refused.value.field is None and words in refused.value.message, refused.value.message


def test_cores_one_and_a_half_megapixels_are_shrunk_for_an_upscale_not_refused(app):
    op = edits.operation_of("upscale-fast")
    assert edits.fitted_size(op, 1536, 1536) == (1024, 1024)
    assert edits.fitted_size(op, 2304, 960) == (1536, 640)
    assert edits.fitted_size(op, 512, 512) == (512, 512)
    _, (gid,) = make_images(app, "a lighthouse")
    with app.app_context():
        assert edits.check_edit(sized(app, gid, 2304, 960), "upscale-fast", {}, None) == {"output_format": "png"}


def test_an_edit_batch_has_one_queued_generation_per_source_with_its_lineage(app):
    _, ids = make_images(app, "a lighthouse", "a harbour")
    with app.test_request_context():
        batch = edits.create_edit_batch(local_user(), ids, "upscale-fast", {})
        rows = sorted(batch.generations, key=lambda g: g.position)
        assert [(g.operation, g.source_id, g.status, g.credits, g.model) for g in rows] == [
            ("upscale-fast", ids[0], Status.QUEUED, 2, "upscale-fast"),
            ("upscale-fast", ids[1], Status.QUEUED, 2, "upscale-fast")]
        assert rows[0].operation_params == {}
        assert spending.allowance(local_user()).used == 2 * 3 + 2 * 2  # the two Core sources, the two upscales


def test_an_inpaint_keeps_its_mask_in_the_store(app):
    _, (gid,) = make_images(app, "a lighthouse")
    with app.test_request_context():
        batch = edits.create_edit_batch(local_user(), [gid], "inpaint", {"prompt": "a boat", "seed": 7}, png(512, 512))
        row = batch.generations[0]
        assert row.prompt == "a boat" and row.requested_seed == 7
        assert row.operation_params == {"grow_mask": 5}
        from app.services import services
        stored = services().stores.get(row.storage).open(row.mask_name)
        assert b"".join(stored.chunks()) == png(512, 512)


def test_one_refused_source_writes_and_charges_nothing(app):
    _, ids = make_images(app, "a lighthouse", "a harbour")
    with app.test_request_context():
        sized(app, ids[1], 20, 20)
        db.session.commit()
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Generation))
        with pytest.raises(EditRefused):
            edits.create_edit_batch(local_user(), ids, "upscale-fast", {})
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Generation)) == before
        assert spending.allowance(local_user()).used == 2 * 3  # the two Core images only


def test_someone_elses_image_is_not_found(app):
    make_user(app, "bob@example.com")
    _, (gid,) = make_images(app, "a lighthouse")
    with app.test_request_context(), pytest.raises(edits.SourceNotFound):
        edits.create_edit_batch(require_user("bob@example.com"), [gid], "upscale-fast", {})


def test_an_edit_over_the_allowance_or_at_another_price_creates_nothing(app):
    make_user(app, "bob@example.com", monthly_credits=50)
    _, (gid,) = make_images(app, "a lighthouse", owner_email="bob@example.com")
    with app.test_request_context():
        bob = require_user("bob@example.com")
        with pytest.raises(lifecycle.PriceChanged):
            edits.create_edit_batch(bob, [gid], "upscale-creative", {"prompt": "x"}, expected_credits=2)
        with pytest.raises(spending.OverAllowance):
            edits.create_edit_batch(bob, [gid], "upscale-creative", {"prompt": "x"}, expected_credits=60)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Generation)) == 1
        assert db.session.scalar(sa.select(MonthlySpend.credits)) == 3


def test_a_retried_operation_reserves_the_operations_price(app):
    _, (gid,) = make_images(app, "a lighthouse")
    with app.test_request_context():
        row = edits.create_edit_batch(local_user(), [gid], "upscale-creative", {"prompt": "x"}).generations[0]
        rid = row.id
        assert lifecycle.cancel_generation(rid)
        used = spending.allowance(local_user()).used
        assert lifecycle.retry(rid)
        assert spending.allowance(local_user()).used == used + 60


DEMO_FIELDS = {
    "image-to-image": {"prompt": "a boat"}, "upscale-conservative": {"prompt": "x"},
    "upscale-creative": {"prompt": "x"}, "inpaint": {"prompt": "a boat"}, "outpaint": {"left": 128, "up": 64},
    "search-and-replace": {"prompt": "a boat", "search_prompt": "the sea"},
    "search-and-recolor": {"prompt": "red", "select_prompt": "the sky"}, "sketch": {"prompt": "x"},
    "structure": {"prompt": "x"}, "style-guide": {"prompt": "x"},
    "replace-background-and-relight": {"background_prompt": "a beach"},
}
DEMO_SIZES = {"upscale-fast": (2048, 2048), "upscale-creative": (2048, 2048), "upscale-conservative": (2048, 2048),
              "outpaint": (640, 576)}


@pytest.mark.parametrize("operation", list(edits.OPERATIONS))
def test_the_demo_provider_does_every_operation_locally(app, operation):
    _, (gid, style) = make_images(app, "a lighthouse", "a painting")
    params = dict(DEMO_FIELDS.get(operation, {}))
    if operation == "style-transfer":
        params["style_image"] = style
    with app.test_request_context():
        batch = edits.create_edit_batch(local_user(), [gid], operation, params,
                                        png(512, 512) if operation in ("inpaint", "erase") else None)
        eid = batch.generations[0].id
    drain(app)
    with app.app_context():
        made = db.session.get(Generation, eid)
        assert made.status == Status.SUCCEEDED and made.is_demo, made.error
        assert (made.width, made.height) == DEMO_SIZES.get(operation, (512, 512))
        assert made.mime_type == ("image/png")
