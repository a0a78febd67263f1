"""The gallery with keyset pagination, and image files served by id."""

import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.media_store.local import LocalStore
from app.models import Batch, Generation


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
            LocalStore(app.config["MEDIA_ROOT"]).put(name, b"\x89PNG fake", "image/png")
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


@pytest.fixture
def searchable(app):
    """Images whose prompts contain LIKE's special characters and quotes."""
    prompts = ["100% cotton shirt", "100 percent wool", "snake_case sign", "snakeXcase sign", 'a "quoted" word',
               "it's a Lighthouse", "back\\slash art"]
    with app.app_context():
        batch = Batch()
        db.session.add(batch)
        for i, prompt in enumerate(prompts):
            batch.generations.append(Generation(
                position=i, prompt=prompt, provider="demo", status="filtered" if i == 1 else "succeeded",
                model="ultra" if i == 0 else "core", file_name=f"bb/{i}.png", mime_type="image/png", width=8, height=8,
                created_at=datetime(2026, 2, 1, 0, 0, i, tzinfo=UTC)))
        db.session.commit()


def tiles(client, url):
    return re.findall(r'<p class="tile-prompt">([^<]*)</p>', client.get(url).get_data(as_text=True))


@pytest.mark.parametrize(("query", "expected"), [
    ("100%", ["100% cotton shirt"]),
    ("snake_case", ["snake_case sign"]),
    ('"quoted"', ["a &#34;quoted&#34; word"]),
    ("it's", ["it&#39;s a Lighthouse"]),
    ("LIGHTHOUSE", ["it&#39;s a Lighthouse"]),
    ("back\\slash", ["back\\slash art"]),
    ("%", ["100% cotton shirt"]),
    ("_", ["snake_case sign"]),
    ("nothing like this", []),
])
def test_search_is_case_insensitive_and_takes_special_characters_literally(client, searchable, query, expected):
    assert tiles(client, f"/all/?q={quote(query)}") == expected


def test_filters_by_status_and_model_and_keeps_them_in_load_more_links(make_app, searchable):
    client = make_app(GALLERY_PAGE_SIZE=2).test_client()
    assert tiles(client, "/all/?status=filtered") == ["100 percent wool"]
    assert tiles(client, "/all/?model=ultra") == ["100% cotton shirt"]
    html = client.get("/all/?q=sign&model=core").get_data(as_text=True)
    assert "snakeXcase sign" in html
    assert tiles(client, "/all/?q=s&status=succeeded")[:2] == ["back\\slash art", "it&#39;s a Lighthouse"]
    link = next_link(client.get("/all/?q=s&status=succeeded").get_data(as_text=True)).replace("&amp;", "&")
    assert "q=s" in link and "status=succeeded" in link
    assert tiles(client, link) == ["snakeXcase sign", "snake_case sign"]


def test_unknown_filter_values_are_ignored(client, searchable):
    assert len(tiles(client, "/all/?status=deleted&model=dall-e")) == 7


def test_a_search_with_no_match_says_so(client, searchable):
    assert "No image matches this search." in client.get("/all/?q=zebra").get_data(as_text=True)


def test_an_htmx_search_answers_the_results_only(client, searchable):
    html = client.get("/all/?q=sign", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.lstrip().startswith('<div id="gallery-results"') and "<html" not in html


@pytest.mark.parametrize(("sent", "address"), [
    ("/all/?q=&status=&model=", "/all/"),
    ("/all/?q=sign&status=&model=", "/all/?q=sign"),
    ("/all/?q=&model=core&status=", "/all/?model=core"),
])
def test_a_cleared_search_leaves_no_empty_parameters_in_the_address(client, searchable, sent, address):
    response = client.get(sent)  # the form without JavaScript sends every field, empty or not
    assert response.status_code == 302 and response.headers["Location"] == address
    searched = client.get(sent, headers={"HX-Request": "true"})  # htmx swaps the results, then shows this address
    assert searched.status_code == 200 and searched.headers["HX-Push-Url"] == address
    assert tiles(client, address) == re.findall(r'<p class="tile-prompt">([^<]*)</p>', searched.get_data(as_text=True))
    assert "HX-Push-Url" not in client.get(address, headers={"HX-Request": "true"}).headers


def test_tiles_show_thumbnails_and_link_to_the_detail_page(client, images):
    html = client.get("/all/").get_data(as_text=True)
    assert re.search(rf'src="/images/{images[0]}/thumb\?v=[0-9a-f]{{12}}"', html)
    assert f'href="/images/{images[0]}"' in html
