"""The image detail page, downloads, delete, reuse, thumbnails, metadata in files, and the batch ZIP."""

import io
import pathlib
import re
import struct
import zipfile
from datetime import UTC, datetime

import pytest
from conftest import drain
from factories import make_batch, make_images
from PIL import Image
from tests_support import csrf_for, row

from app.extensions import db
from app.imaging.metadata import read_parameters
from app.models import Generation


def test_detail_page_shows_the_image_and_everything_it_was_made_with(app, client):
    _, (gid,) = make_images(app, "a lighthouse <b>at dusk</b>", model="sd3.5-medium", aspect_ratio="16:9",
                            style_preset="cinematic", negative_prompt="fog", seed=42, cfg_scale=3.5,
                            output_format="jpeg")
    html = client.get(f"/images/{gid}").get_data(as_text=True)
    for text in ("a lighthouse &lt;b&gt;at dusk&lt;/b&gt;", "fog", "SD 3.5 Medium", "16:9 (672 × 384)",
                 "<dt>Style</dt><dd>Cinematic</dd>",
                 "3.5", ">42<", "JPEG", f">Batch {row(app, gid).batch_id}<", "Offline demo"):
        assert text in html, text
    assert re.search(rf'href="/images/{gid}/file\?v=[0-9a-f]{{12}}&amp;download=1"', html)
    assert f'href="/?reuse={gid}"' in html
    assert 'data-copy-target="prompt-text"' in html


def test_the_detail_page_is_named_by_its_prompt_and_says_none_for_no_style(app, client):
    _, (gid,) = make_images(app, "a lighthouse on a cliff above a stormy sea at dusk, gulls wheeling over the foam")
    html = client.get(f"/images/{gid}").get_data(as_text=True)
    title = "a lighthouse on a cliff above a stormy sea at dusk, gulls…"  # cut at a word, as a batch's title
    assert f"<title>{title} · Image Generator</title>" in html and f'<h1 class="batch-title">{title}</h1>' in html
    assert "<dt>Style</dt><dd>None</dd>" in html  # as the form's Style field says it


def test_download_sends_the_original_as_an_attachment(app, client):
    _, (gid,) = make_images(app, "a red fox")
    with client.get(f"/images/{gid}/file?download=1") as response:
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith('attachment; filename=01-a-red-fox.png')


def test_the_stored_file_carries_its_prompt_and_settings(app):
    for fmt in ("png", "jpeg", "webp"):
        _, (gid,) = make_images(app, f"a harbour in {fmt}", negative_prompt="people", seed=7, output_format=fmt)
        data = (pathlib.Path(app.config["MEDIA_ROOT"]) / row(app, gid).file_name).read_bytes()
        text = read_parameters(data)
        assert text.startswith(f"a harbour in {fmt}\nNegative prompt: people\nSeed: 7, Size: 512x512, Model: core")


def test_a_thumbnail_of_at_most_384_pixels_is_written_as_jpeg(app, client):
    _, (gid,) = make_images(app, "a tall tower", aspect_ratio="9:16")
    generation = row(app, gid)
    assert (generation.thumb_width, generation.thumb_height) == (219, 384)
    with client.get(f"/images/{gid}/thumb") as response:
        assert response.mimetype == "image/jpeg"
        with Image.open(io.BytesIO(response.data)) as thumb:
            assert thumb.format == "JPEG" and thumb.size == (219, 384)


def test_a_thumbnail_stored_as_webp_before_jpeg_thumbnails_is_still_served_as_webp(app, client):
    _, (gid,) = make_images(app, "a tall tower")
    media = pathlib.Path(app.config["MEDIA_ROOT"])
    with app.app_context():
        generation = db.session.get(Generation, gid)
        old_name = generation.thumb_name.rsplit(".", 1)[0] + ".webp"
        Image.new("RGB", (384, 384)).save(media / old_name, format="WEBP")
        generation.thumb_name = old_name
        db.session.commit()
    with client.get(f"/images/{gid}/thumb") as response:
        assert response.status_code == 200 and response.mimetype == "image/webp"


def test_a_gallery_page_of_24_thumbnails_weighs_well_under_a_megabyte(make_app):
    app = make_app()
    for _ in range(3):
        make_batch(app, *[f"prompt {i}" for i in range(8)], output_format="png")
    drain(app)
    client = app.test_client()
    html = client.get("/all/").get_data(as_text=True)
    thumbs = [line.split('"')[1] for line in html.split("<img src=")[1:]]
    assert len(thumbs) == 24
    total = len(html.encode())
    for url in thumbs:
        with client.get(url) as response:
            total += len(response.data)
    assert total < 500_000, total


def test_reuse_fills_the_home_form_without_generating(app, client):
    _, (gid,) = make_images(app, "a castle", model="ultra", aspect_ratio="3:2", style_preset="anime",
                            negative_prompt="rain", output_format="webp")
    html = client.get(f"/?reuse={gid}").get_data(as_text=True)
    assert re.search(r'name="prompts-0"[^>]*>\r?\na castle</textarea>', html)
    assert '<option selected value="ultra">' in html and '<option selected value="3:2">' in html
    assert '<option selected value="anime">' in html and '<option selected value="webp">' in html
    assert f'value="{row(app, gid).seed}"' in html and "rain</textarea>" in html
    assert f"settings of image {gid} are filled in" in html
    with app.app_context():
        assert db.session.query(Generation).count() == 1


def test_reuse_of_an_unknown_image_shows_the_empty_form(client):
    assert client.get("/?reuse=999").status_code == 200


def test_delete_asks_first_then_removes_the_row_and_both_files(app, client):
    _, (gid,) = make_images(app, "a cat")
    generation = row(app, gid)
    media = pathlib.Path(app.config["MEDIA_ROOT"])
    assert "Delete this image?" in client.get(f"/images/{gid}/delete").get_data(as_text=True)
    response = client.post(f"/images/{gid}/delete", data={"csrf_token": csrf_for(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/all/"
    assert row(app, gid) is None
    assert not (media / generation.file_name).exists() and not (media / generation.thumb_name).exists()
    assert "Image deleted." in client.get("/all/").get_data(as_text=True)
    assert client.get(f"/images/{gid}").status_code == 404


def test_delete_with_htmx_redirects_the_page_to_the_gallery(app, client):
    _, (gid,) = make_images(app, "a cat")
    response = client.post(f"/images/{gid}/delete", headers={"HX-Request": "true", "X-CSRFToken": csrf_for(client)})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/all/"


def test_deleting_an_image_whose_files_are_already_gone_still_works(app, client):
    _, (gid,) = make_images(app, "a cat")
    generation = row(app, gid)
    for name in (generation.file_name, generation.thumb_name):
        (pathlib.Path(app.config["MEDIA_ROOT"]) / name).unlink()
    assert client.post(f"/images/{gid}/delete", data={"csrf_token": csrf_for(client)}).status_code == 303
    assert row(app, gid) is None


def test_delete_needs_a_csrf_token_and_a_real_id(app, client):
    _, (gid,) = make_images(app, "a cat")
    assert client.post(f"/images/{gid}/delete").status_code == 400
    assert row(app, gid) is not None
    assert client.post("/images/999/delete", data={"csrf_token": csrf_for(client)}).status_code == 404


@pytest.mark.parametrize("url", ["/images/999", "/images/999/thumb", "/images/999/delete"])
def test_unknown_images_are_404(client, url):
    assert client.get(url).status_code == 404


def test_a_batch_downloads_as_one_zip_of_its_images_in_prompt_order(app, client):
    _, ids = make_images(app, "first prompt", "second prompt", output_format="webp")
    batch_id = row(app, ids[0]).batch_id
    with client.get(f"/generate/{batch_id}/images.zip") as response:
        assert response.status_code == 200 and response.mimetype == "application/zip"
        assert response.is_streamed
        archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.namelist() == ["01-first-prompt.webp", "02-second-prompt.webp"]
    assert archive.testzip() is None
    stored = (pathlib.Path(app.config["MEDIA_ROOT"]) / row(app, ids[0]).file_name).read_bytes()
    assert archive.read("01-first-prompt.webp") == stored


def test_each_file_in_a_zip_is_dated_when_its_image_was_finished(app, client):
    _, ids = make_images(app, "first prompt", "second prompt")
    finished = datetime(2026, 7, 14, 18, 30, 13, tzinfo=UTC)
    with app.app_context():
        db.session.get(Generation, ids[0]).finished_at = finished
        db.session.get(Generation, ids[1]).finished_at = None  # never recorded: when it was asked for
        db.session.commit()
        created = db.session.get(Generation, ids[1]).created_at
    with client.get(f"/generate/{row(app, ids[0]).batch_id}/images.zip") as response:
        archive = zipfile.ZipFile(io.BytesIO(response.data))
    for info, when in zip(archive.infolist(), (finished, created), strict=True):
        day_and_time = when.astimezone(UTC).timetuple()[:6]
        assert info.date_time == (*day_and_time[:5], day_and_time[5] // 2 * 2)  # the field counts seconds in twos
        # The exact instant, for readers that show it in their own time zone: the "UT" extra field.
        header, size, flags, mtime = struct.unpack("<HHBl", info.extra[:9])
        assert (header, size, flags, mtime) == (0x5455, 5, 1, int(when.timestamp()))
    assert archive.testzip() is None


def test_a_batch_without_images_has_no_zip(app, client):
    batch_id, _ = make_batch(app, "never made")
    assert client.get(f"/generate/{batch_id}/images.zip").status_code == 404
    assert client.get("/generate/999/images.zip").status_code == 404


def current_urls(client, gid):
    """The file URL the detail page shows and the thumbnail URL the gallery shows."""
    detail = client.get(f"/images/{gid}").get_data(as_text=True)
    gallery = client.get("/all/").get_data(as_text=True)
    file_url = re.search(rf'<img src="(/images/{gid}/file\?v=[0-9a-f]{{12}})"', detail)
    thumb_url = re.search(rf'<img src="(/images/{gid}/thumb\?v=[0-9a-f]{{12}})"', gallery)
    assert file_url and thumb_url
    return file_url.group(1), thumb_url.group(1)


YEAR_LONG = "max-age=31536000"


def test_only_urls_naming_the_current_file_are_cached_for_a_year(app, client):
    _, (gid,) = make_images(app, "a red fox")
    for url in current_urls(client, gid):
        with client.get(url) as response:
            assert response.status_code == 200
            assert YEAR_LONG in response.headers["Cache-Control"] and "immutable" in response.headers["Cache-Control"]
        unversioned, _, _ = url.partition("?")
        for stale in (unversioned, unversioned + "?v=000000000000", unversioned + "?v="):
            with client.get(stale) as response:
                assert response.status_code == 200
                assert YEAR_LONG not in response.headers["Cache-Control"]
                assert "no-cache" in response.headers["Cache-Control"]


def test_a_retry_that_replaces_the_file_changes_both_urls(app, client):
    _, (gid,) = make_images(app, "a red fox", filtered=True)
    old_file, old_thumb = current_urls(client, gid)
    assert client.post(f"/generations/{gid}/retry", data={"csrf_token": csrf_for(client)}).status_code == 303
    drain(app)
    new_file, new_thumb = current_urls(client, gid)
    assert new_file != old_file and new_thumb != old_thumb
    stored = (pathlib.Path(app.config["MEDIA_ROOT"]) / row(app, gid).file_name).read_bytes()
    with client.get(old_file) as response:  # an old link still works, but is never pinned in a cache
        assert response.data == stored and YEAR_LONG not in response.headers["Cache-Control"]
    with client.get(new_file) as response:
        assert response.data == stored and YEAR_LONG in response.headers["Cache-Control"]


def test_download_links_carry_the_version_too(app, client):
    _, (gid,) = make_images(app, "a red fox")
    html = client.get(f"/images/{gid}").get_data(as_text=True)
    link = re.search(rf'href="(/images/{gid}/file\?v=[0-9a-f]{{12}}&amp;download=1)"', html).group(1)
    with client.get(link.replace("&amp;", "&")) as response:
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert YEAR_LONG in response.headers["Cache-Control"]
