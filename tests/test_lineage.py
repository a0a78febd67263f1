"""Lineage on the pages: "Made from" and "Made from this" on the detail page, the operation named on the card and
the tile, the gallery filtered by what made an image, and a result kept (saying so) when its source is deleted."""

import io

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_images
from PIL import Image
from tests_support import csrf_for, row

from app.extensions import db
from app.models import Generation


@pytest.fixture
def chain(app, client):
    """An upload, a variation of it, and an upscale of that variation, all finished."""
    buffer = io.BytesIO()
    Image.new("RGB", (512, 384), (40, 120, 200)).save(buffer, format="PNG")
    token = csrf_for(client)
    upload = client.post("/all/upload", data={"csrf_token": token, "file": (io.BytesIO(buffer.getvalue()), "a.png")},
                         content_type="multipart/form-data")
    upload_id = int(upload.headers["Location"].rsplit("/", 1)[1])
    made = client.post(f"/images/{upload_id}/edit/image-to-image", data={
        "csrf_token": token, "prompt": "a blue wall, painted", "strength": "0.6"})
    assert made.status_code == 303, made.get_data(as_text=True)
    drain(app)
    variation_id = made_from(app, upload_id)
    client.post(f"/images/{variation_id}/edit/upscale-fast", data={"csrf_token": token, "quick": "1"})
    drain(app)
    return upload_id, variation_id, made_from(app, variation_id)


def made_from(app, source_id: int) -> int:
    """The id of the one image made from this one."""
    with app.app_context():
        return db.session.scalars(sa.select(Generation.id).where(Generation.source_id == source_id)).one()


def test_the_detail_page_shows_made_from_and_made_from_this(client, chain):
    upload_id, variation_id, upscale_id = chain
    middle = client.get(f"/images/{variation_id}").get_data(as_text=True)
    assert "Made from</h2>" in middle and f'href="/images/{upload_id}"' in middle
    assert "Image to image of image" in middle
    assert "Made from this</h2>" in middle and f'href="/images/{upscale_id}"' in middle
    first = client.get(f"/images/{upload_id}").get_data(as_text=True)
    assert "Made from</h2>" not in first and "Made from this</h2>" in first


def test_a_result_says_its_source_was_deleted(client, chain):
    upload_id, variation_id, _ = chain
    client.post(f"/images/{upload_id}/delete", data={"csrf_token": csrf_for(client)})
    page = client.get(f"/images/{variation_id}")
    assert page.status_code == 200 and "source deleted" in page.get_data(as_text=True)


def test_cards_and_tiles_name_the_operation(app, client, chain):
    _, variation_id, upscale_id = chain
    gallery = client.get("/all/").get_data(as_text=True)
    assert '<span class="badge operation">Upscale (fast, 4×)</span>' in gallery
    assert '<span class="badge operation">Uploaded</span>' in gallery
    card = client.get(f"/generate/{row(app, upscale_id).batch_id}").get_data(as_text=True)
    assert f'Upscale (fast, 4×)</span> of <a href="/images/{variation_id}">image {variation_id}</a>' in card


def test_the_gallery_filters_by_what_made_an_image_and_keeps_it_in_the_url(app, client, chain):
    make_images(app, "a plain generated fox")
    upscales = client.get("/all/?operation=upscale-fast").get_data(as_text=True)
    assert upscales.count('class="tile ') == 1 and '<option value="upscale-fast" selected>' in upscales
    uploads = client.get("/all/?operation=upload").get_data(as_text=True)
    assert uploads.count('class="tile ') == 1
    everything = client.get("/all/?operation=nonsense").get_data(as_text=True)
    assert everything.count('class="tile ') == 4
