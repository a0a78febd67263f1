"""The gallery with keyset pagination, and image files served by id."""

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Batch, Generation
from app.storage import write_atomically


@pytest.fixture
def images(app):
    """Five stored images; three share one creation time so ties are broken by id."""
    same = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    times = [datetime(2026, 1, 1, tzinfo=UTC), same, same, same,
             datetime(2026, 1, 3, tzinfo=UTC)]
    with app.app_context():
        batch = Batch()
        db.session.add(batch)
        for i, created in enumerate(times):
            name = f"aa/file{i}.png"
            write_atomically(app.config["MEDIA_ROOT"], name, b"\x89PNG fake")
            batch.generations.append(Generation(
                position=i, prompt=f"prompt {i}", provider="demo", status="succeeded", created_at=created,
                file_name=name, mime_type="image/png", width=10, height=10))
        batch.generations.append(Generation(position=9, prompt="no image", provider="demo", status="failed"))
        db.session.commit()
        return [g.id for g in batch.generations[:5]]


def shown_prompts(html):
    return re.findall(r'<p class="tile-prompt">(prompt \d)</p>', html)


def next_link(html):
    match = re.search(r'<a href="(/all/\?before=[^"]+)"', html)
    return match.group(1) if match else None


def test_gallery_is_newest_first_with_ties_broken_by_id(make_app, images):
    app = make_app(GALLERY_PAGE_SIZE=100)
    html = app.test_client().get("/all/").get_data(as_text=True)
    assert shown_prompts(html) == ["prompt 4", "prompt 3", "prompt 2", "prompt 1", "prompt 0"]
    assert "no image" not in html


def test_pages_follow_each_other_without_gaps_or_repeats_across_ties(make_app, images):
    app = make_app(GALLERY_PAGE_SIZE=2)
    client = app.test_client()
    seen, url = [], "/all/"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += shown_prompts(html)
        url = next_link(html)
    assert seen == ["prompt 4", "prompt 3", "prompt 2", "prompt 1", "prompt 0"]


def test_load_more_with_htmx_answers_only_the_next_items(make_app, images):
    app = make_app(GALLERY_PAGE_SIZE=2)
    client = app.test_client()
    link = next_link(client.get("/all/").get_data(as_text=True))
    fragment = client.get(link, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment
    assert shown_prompts(fragment) == ["prompt 2", "prompt 1"]
    assert 'hx-target="closest li"' in fragment


def test_an_exactly_full_last_page_has_no_load_more(make_app, images):
    app = make_app(GALLERY_PAGE_SIZE=5)
    assert next_link(app.test_client().get("/all/").get_data(as_text=True)) is None


def test_a_malformed_cursor_shows_the_first_page(client, images):
    response = client.get("/all/?before=nonsense")
    assert response.status_code == 200
    assert shown_prompts(response.get_data(as_text=True))[0] == "prompt 4"


def test_empty_gallery_says_what_to_do_next(client):
    html = client.get("/all/").get_data(as_text=True)
    assert "No images yet." in html and 'href="/"' in html


def test_tiles_are_lazy_with_their_size_and_link_to_their_batch(client, images):
    html = client.get("/all/").get_data(as_text=True)
    assert 'loading="lazy"' in html and 'width="10" height="10"' in html
    assert re.search(r'href="/generate/\d+">Batch \d+</a>', html)


def test_image_file_is_served_by_generation_id_with_its_type(client, images):
    with client.get(f"/images/{images[0]}/file") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/png" and response.data == b"\x89PNG fake"
        assert "max-age" in response.headers["Cache-Control"]


@pytest.mark.parametrize("url", ["/images/999/file", "/images/abc/file", "/images/..%2F..%2Fetc%2Fpasswd/file"])
def test_unknown_or_malformed_image_ids_are_404(client, images, url):
    assert client.get(url).status_code == 404


def test_a_generation_without_a_file_is_404(app, client, images):
    with app.app_context():
        failed = db.session.scalar(sa.select(Generation.id).where(Generation.file_name.is_(None)))
    assert client.get(f"/images/{failed}/file").status_code == 404


def test_a_file_missing_from_disk_is_404_not_500(app, client, images):
    import os

    os.remove(os.path.join(app.config["MEDIA_ROOT"], "aa/file0.png"))
    assert client.get(f"/images/{images[0]}/file").status_code == 404
