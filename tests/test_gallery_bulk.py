"""The gallery's count, tile shapes and bulk actions: delete several (asked first) and download several as a ZIP."""

import io
import pathlib
import re
import zipfile

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_user
from tests_support import csrf_for, row, sign_in

from app.extensions import db
from app.gallery.pages import GalleryFilter, gallery_count
from app.gallery.selection import MAX_SELECTED
from app.gallery.shapes import nearest_ratio
from app.models import Batch


def made(app, *prompts, user=None, **options):
    """Images for these prompts from the demo provider, each batch its own; return the generation ids."""
    ids = [make_batch(app, prompt, owner_email=user, **options)[1][0] for prompt in prompts]
    drain(app)
    return ids



def files_of(app, generation_id):
    generation = row(app, generation_id)
    return [pathlib.Path(app.config["MEDIA_ROOT"]) / name for name in (generation.file_name, generation.thumb_name)]


def delete(client, ids, token, **extra):
    return client.post("/all/delete", data={"ids": [str(i) for i in ids], "csrf_token": token, **extra})


@pytest.mark.parametrize(("size", "expected"), [
    ((1344, 768), "16:9"), ((2016, 1152), "16:9"), ((672, 384), "16:9"), ((640, 1536), "9:21"),
    ((1000, 1010), "1:1"), ((None, None), "1:1")])
def test_a_tile_takes_the_offered_ratio_nearest_its_stored_size(size, expected):
    assert nearest_ratio(*size) == expected


def test_tiles_carry_the_shape_class_of_their_image(app, client):
    (square,) = made(app, "a square bay")
    (tall,) = made(app, "a tall tower", aspect_ratio="9:21")
    html = client.get("/all/").get_data(as_text=True)
    assert f'<li class="tile shape-1-1" id="generation-{square}">' in html
    assert f'<li class="tile shape-9-21" id="generation-{tall}">' in html


def test_the_gallery_counts_every_image_of_the_search(app, client):
    made(app, "a red fox", "a grey fox", "an owl")
    assert re.search(r'id="gallery-count">3 images</p>', client.get("/all/").get_data(as_text=True))
    assert "2 images match “fox”" in client.get("/all/?q=fox").get_data(as_text=True)
    assert "1 image matches “owl”" in client.get("/all/?q=owl").get_data(as_text=True)
    assert "3 images match these filters" in client.get("/all/?status=succeeded").get_data(as_text=True)
    searched = client.get("/all/?q=fox", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "2 images match “fox”" in searched  # a search in place brings its own count


def test_the_count_is_one_count_query_and_reads_thousands_with_a_separator(app):
    made(app, "one image")
    statements = []
    with app.test_request_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        assert gallery_count(GalleryFilter(q="image")) == 1
    assert len(statements) == 1 and statements[0].lower().startswith("select count(*)")
    with app.test_request_context():
        from flask import render_template

        html = render_template("gallery/_count.html", count=1234, filters=GalleryFilter())
    assert ">1,234 images</p>" in html


def test_deleting_several_asks_first_without_javascript(app, client):
    first, second = made(app, "a red <b>fox</b>", "a grey owl")
    page = client.get(f"/all/delete?ids={first}&ids={second}&q=a").get_data(as_text=True)
    assert "Delete these 2 images?" in page and "a red &lt;b&gt;fox&lt;/b&gt;" in page and "a grey owl" in page
    assert 'name="csrf_token"' in page and f'name="ids" value="{first}"' in page and 'name="q" value="a"' in page
    assert row(app, first) is not None  # asking deletes nothing


def test_deleting_several_removes_rows_files_and_emptied_batches_and_keeps_the_search(app, client):
    first, second, kept = made(app, "a red fox", "a grey fox", "an owl")
    paths = files_of(app, first) + files_of(app, second)
    batch_ids = [row(app, first).batch_id, row(app, second).batch_id]
    response = delete(client, [first, second], csrf_for(client), q="fox")
    assert response.status_code == 303 and response.headers["Location"] == "/all/?q=fox"
    assert "Deleted 2 images." in client.get("/all/").get_data(as_text=True)
    assert row(app, first) is None and row(app, second) is None and row(app, kept) is not None
    assert not any(path.exists() for path in paths)
    with app.app_context():
        assert db.session.scalars(sa.select(Batch).where(Batch.id.in_(batch_ids))).all() == []


def test_deleting_with_htmx_removes_the_tiles_in_place_and_updates_the_count(app, client):
    first, second, kept = made(app, "a red fox", "a grey fox", "an owl")
    response = client.post("/all/delete", data={"ids": [str(first), str(second)]},
                           headers={"HX-Request": "true", "X-CSRFToken": csrf_for(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    for gone in (first, second):
        assert f'<li id="generation-{gone}" hx-swap-oob="delete"></li>' in html
    assert f"generation-{kept}" not in html
    assert 'id="gallery-count" hx-swap-oob="true">1 image</p>' in html and "Deleted 2 images." in html


def test_deleting_the_last_image_with_htmx_reloads_into_the_empty_gallery(app, client):
    (only,) = made(app, "a lone fox")
    response = client.post("/all/delete", data={"ids": [str(only)]},
                           headers={"HX-Request": "true", "X-CSRFToken": csrf_for(client)})
    assert response.headers["HX-Refresh"] == "true"
    assert "No images yet" in client.get("/all/").get_data(as_text=True)


def test_bulk_delete_needs_a_csrf_token(app, client):
    (gid,) = made(app, "a red fox")
    assert client.post("/all/delete", data={"ids": [str(gid)]}).status_code == 400
    assert row(app, gid) is not None


@pytest.mark.parametrize("bad", ["999999", "abc", "-1", "0"])
def test_one_id_that_is_missing_or_malformed_makes_the_whole_request_a_404(app, client, bad):
    (gid,) = made(app, "a red fox")
    assert delete(client, [gid, bad], csrf_for(client)).status_code == 404
    assert client.get(f"/all/delete?ids={gid}&ids={bad}").status_code == 404
    assert client.get(f"/all/images.zip?ids={gid}&ids={bad}").status_code == 404
    assert row(app, gid) is not None


@pytest.fixture
def two_members(make_app):
    app = make_app(AUTH_MODE="accounts")
    for email in ("owner@example.com", "other@example.com"):
        make_user(app, email)
    make_user(app, "admin@example.com", admin=True)
    mine = made(app, "the owner's fox", user="owner@example.com")
    theirs = made(app, "the other's owl", user="other@example.com")
    return app, mine[0], theirs[0]


def test_someone_elses_image_in_the_selection_answers_404_and_nothing_is_deleted(two_members):
    app, mine, theirs = two_members
    client = app.test_client()
    sign_in(client, "other@example.com")
    token = csrf_for(client)
    assert delete(client, [theirs, mine], token).status_code == 404
    assert client.get(f"/all/delete?ids={theirs}&ids={mine}").status_code == 404
    assert client.get(f"/all/images.zip?ids={mine}").status_code == 404
    assert row(app, mine) is not None and row(app, theirs) is not None


def test_an_admin_may_delete_anyones_images_together(two_members):
    app, mine, theirs = two_members
    client = app.test_client()
    sign_in(client, "admin@example.com")
    token = csrf_for(client)
    assert delete(client, [mine, theirs], token).status_code == 303
    assert row(app, mine) is None and row(app, theirs) is None


def test_signed_out_the_bulk_routes_send_to_sign_in(two_members):
    app, mine, _ = two_members
    client = app.test_client()
    assert client.get(f"/all/images.zip?ids={mine}").status_code == 302
    assert client.get(f"/all/delete?ids={mine}").status_code == 302


def test_more_than_the_cap_or_none_at_all_is_refused_with_a_message_and_nothing_deleted(app, client):
    (gid,) = made(app, "a red fox")
    token = csrf_for(client)
    too_many = [gid] + list(range(10**6, 10**6 + MAX_SELECTED))
    response = delete(client, too_many, token)
    assert response.status_code == 303 and row(app, gid) is not None
    assert f"Select at most {MAX_SELECTED} images at a time ({MAX_SELECTED + 1} were selected)." in \
        client.get("/all/").get_data(as_text=True)
    query = "&".join(f"ids={i}" for i in too_many)
    assert client.get(f"/all/images.zip?{query}").status_code == 303
    assert client.get(f"/all/delete?{query}").status_code == 303
    assert client.get("/all/delete").status_code == 303
    assert "Select at least one image first." in client.get("/all/").get_data(as_text=True)
    htmx = client.post("/all/delete", data={"ids": [str(i) for i in too_many]},
                       headers={"HX-Request": "true", "X-CSRFToken": token})
    assert htmx.status_code == 200 and "Select at most" in htmx.get_data(as_text=True)
    assert row(app, gid) is not None


def test_the_ids_at_the_cap_are_accepted_and_repeats_count_once(app, client):
    (gid,) = made(app, "a red fox")
    with client.get(f"/all/images.zip?{'&'.join([f'ids={gid}'] * (MAX_SELECTED + 5))}") as response:
        assert response.status_code == 200


def test_the_selection_zip_holds_each_image_once_under_names_kept_apart_by_id(app, client):
    first, second = made(app, "a red fox", "a red fox", output_format="jpeg")
    with client.get(f"/all/images.zip?ids={first}&ids={second}") as response:
        assert response.status_code == 200
        assert response.headers["Content-Disposition"] == 'attachment; filename="images-2.zip"'
        archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.namelist() == [f"{second}-a-red-fox.jpg", f"{first}-a-red-fox.jpg"]  # gallery order
    for gid in (first, second):
        original = (pathlib.Path(app.config["MEDIA_ROOT"]) / row(app, gid).file_name).read_bytes()
        assert archive.read(f"{gid}-a-red-fox.jpg") == original
