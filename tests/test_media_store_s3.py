"""The S3 store against a real S3 gateway (SeaweedFS): files, presigned URLs, serving, the ZIP, failures."""

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest
import requests
from conftest import s3_settings
from factories import make_images
from PIL import Image
from tests_support import csrf_for, row

from app.media_store.base import FileMissing
from app.services import services

pytestmark = pytest.mark.s3



def store_of(app):
    return services(app).stores.get("s3")


def local_files(app):
    return [p for p in Path(app.config["MEDIA_ROOT"]).rglob("*") if p.is_file()]


def test_put_open_size_and_delete_on_a_real_bucket(s3_app, seaweed):
    store = store_of(s3_app)
    store.put("ab/abc.png", b"\x89PNG bytes", "image/png")
    assert store.size("ab/abc.png") == 10
    stored = store.open("ab/abc.png")
    assert (stored.size, b"".join(stored.chunks())) == (10, b"\x89PNG bytes")
    head = seaweed.client().head_object(Bucket=seaweed.bucket, Key=store.object_key("ab/abc.png"))
    assert head["ContentType"] == "image/png" and "immutable" in head["CacheControl"]
    assert store.object_key("ab/abc.png").startswith(s3_app.config["S3_PREFIX"])
    store.delete("ab/abc.png")
    store.delete("ab/abc.png")  # already gone is fine
    assert store.size("ab/abc.png") is None
    with pytest.raises(FileMissing):
        store.open("ab/abc.png")


def test_a_presigned_url_is_fetched_by_a_plain_http_client(s3_app):
    store = store_of(s3_app)
    store.put("cd/cde.webp", b"RIFF webp", "image/webp")
    url = store.url("cd/cde.webp", "image/webp")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"RIFF webp"
    assert answer.headers["Content-Type"] == "image/webp"
    download = requests.get(store.url("cd/cde.webp", "image/webp", download_name="01-ä-fox.webp"), timeout=10)
    assert download.headers["Content-Disposition"].startswith('attachment; filename=01-a-fox.webp; filename*=')


def test_a_job_stores_the_image_and_thumbnail_in_the_bucket_only(s3_app, seaweed):
    _, (gid,) = make_images(s3_app, "a lighthouse")
    generation = row(s3_app, gid)
    assert generation.status == "succeeded" and generation.storage == "s3"
    prefix = s3_app.config["S3_PREFIX"]
    assert seaweed.keys(prefix) == sorted([prefix + generation.file_name, prefix + generation.thumb_name])
    assert "lighthouse" not in generation.file_name
    assert local_files(s3_app) == []
    stored = store_of(s3_app).open(generation.file_name)
    assert stored.size == generation.byte_size


def test_file_and_download_redirect_to_presigned_urls_after_the_ownership_check(s3_app, seaweed):
    _, (gid,) = make_images(s3_app, "a red fox")
    client = s3_app.test_client()
    generation = row(s3_app, gid)
    with client.get(f"/images/{gid}/file") as response:
        assert response.status_code == 302
        location = response.headers["Location"]
    assert location.startswith(seaweed.endpoint_url + "/" + seaweed.bucket + "/")
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200 and len(fetched.content) == generation.byte_size
    with client.get(f"/images/{gid}/file?download=1") as response:
        download = requests.get(response.headers["Location"], timeout=10)
    assert download.headers["Content-Disposition"].startswith("attachment; filename=01-a-red-fox.png")
    assert client.get("/images/999/file").status_code == 404


def test_the_csp_lets_images_come_from_the_store_when_redirecting(s3_app, seaweed):
    policy = s3_app.test_client().get("/").headers["Content-Security-Policy"]
    assert f"img-src 'self' data: {seaweed.endpoint_url};" in policy


def test_thumbnails_are_streamed_through_the_app_and_cached_by_version(s3_app):
    _, (gid,) = make_images(s3_app, "a tall tower")
    client = s3_app.test_client()
    html = client.get("/all/").get_data(as_text=True)
    url = re.search(rf'<img src="(/images/{gid}/thumb\?v=[0-9a-f]{{12}})"', html).group(1)
    with client.get(url) as response:
        assert response.status_code == 200 and response.is_streamed
        assert "max-age=31536000" in response.headers["Cache-Control"]
        assert "private" in response.headers["Cache-Control"]
        with Image.open(io.BytesIO(response.data)) as thumb:
            assert thumb.format == "JPEG" and response.mimetype == "image/jpeg"
        etag = response.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_proxy_mode_streams_the_file_through_the_app(make_app, seaweed):
    app = make_app(**s3_settings(seaweed, S3_SERVE="proxy"))
    _, (gid,) = make_images(app, "a red fox")
    client = app.test_client()
    with client.get(f"/images/{gid}/file?download=1") as response:
        assert response.status_code == 200 and response.is_streamed
        assert response.headers["Content-Disposition"] == "attachment; filename=01-a-red-fox.png"
        assert int(response.headers["Content-Length"]) == row(app, gid).byte_size
        assert response.data == b"".join(store_of(app).open(row(app, gid).file_name).chunks())
    assert "img-src 'self' data:;" in client.get("/").headers["Content-Security-Policy"]


def test_the_batch_zip_streams_from_the_bucket(s3_app):
    _, ids = make_images(s3_app, "first prompt", "second prompt", "third prompt")
    batch_id = row(s3_app, ids[0]).batch_id
    with s3_app.test_client().get(f"/generate/{batch_id}/images.zip") as response:
        assert response.status_code == 200 and response.is_streamed
        chunks = list(response.response)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.namelist() == ["01-first-prompt.png", "02-second-prompt.png", "03-third-prompt.png"]
    assert archive.testzip() is None
    for name, gid in zip(archive.namelist(), ids, strict=True):
        stored = b"".join(store_of(s3_app).open(row(s3_app, gid).file_name).chunks())
        assert hashlib.sha256(archive.read(name)).digest() == hashlib.sha256(stored).digest()
    assert len(chunks) > 3  # sent piece by piece, not built whole first


def test_delete_removes_both_objects(s3_app, seaweed):
    _, (gid,) = make_images(s3_app, "a cat")
    client = s3_app.test_client()
    assert client.post(f"/images/{gid}/delete", data={"csrf_token": csrf_for(client)}).status_code == 303
    assert seaweed.keys(s3_app.config["S3_PREFIX"]) == []


def test_readyz_checks_the_bucket(s3_app, make_app, seaweed):
    assert s3_app.test_client().get("/readyz").get_json()["checks"]["media"] == "ok"
    missing = make_app(**s3_settings(seaweed, S3_BUCKET="no-such-bucket"))
    assert missing.test_client().get("/readyz").get_json()["checks"]["media"] == "no such bucket"
