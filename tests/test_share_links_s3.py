"""Share links against a real S3 store (SeaweedFS): signed out, a link's files are presigned URLs of S3_URL_TTL
seconds whose bytes are the stored ones, the page lets images come from the store, and once the link is revoked
every URL of it answers 404."""

import io
import re
import zipfile
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from conftest import s3_settings
from factories import make_images, make_user
from tests_support import csrf_for, row, sign_in

pytestmark = pytest.mark.s3
OWNER = "owner@example.com"
TTL = 123  # not the default 300, so the URLs are seen to follow the setting


@pytest.fixture
def shared(make_app, seaweed):
    """An accounts-mode app on S3; the owner's two images, one in a collection; a link to it and to the collection."""
    app = make_app(**s3_settings(seaweed, S3_URL_TTL=TTL), AUTH_MODE="accounts")
    make_user(app, OWNER)
    _, (named, other) = make_images(app, "the named lighthouse", "the other harbour", owner_email=OWNER)
    assert row(app, named).storage == "s3"
    owner = app.test_client()
    sign_in(owner, OWNER)
    headers = {"X-CSRFToken": csrf_for(owner)}
    collection = owner.post("/api/collections", json={"name": "For the client"}, headers=headers).get_json()
    owner.post(f"/api/collections/{collection['id']}/images", json={"image_ids": [named]}, headers=headers)
    links = {kind: owner.post("/api/share-links", json={**target, "expires_in_days": 7}, headers=headers)
             for kind, target in (("image", {"image_id": named}), ("collection", {"collection_id": collection["id"]}))}
    assert all(made.status_code == 201 for made in links.values())
    return app, owner, headers, named, other, {kind: made.get_json() for kind, made in links.items()}


def path_of(url: str) -> str:
    return urlsplit(url).path


def stored(app, seaweed, name: str) -> bytes:
    """The object's bytes, read straight from the bucket."""
    key = app.config["S3_PREFIX"] + name
    return seaweed.client().get_object(Bucket=seaweed.bucket, Key=key)["Body"].read()


def link_urls(html: str, link: str, image_id: int) -> dict[str, str]:
    """The file, download and thumbnail URLs the link's page shows for one image (all under the link)."""
    base = re.escape(f"{link}/images/{image_id}/")
    found = {"file": re.search(rf'href="({base}file)"', html), "thumb": re.search(rf'src="({base}thumb)"', html),
             "download": re.search(rf'href="({base}file\?download=1)"', html)}
    assert all(found.values()), found
    return {kind: match.group(1) for kind, match in found.items()}


def follow(stranger, url: str, seaweed) -> tuple[str, requests.Response]:
    """Open a link's file URL signed out: a private redirect to a presigned URL, fetched from SeaweedFS."""
    response = stranger.get(url)
    assert response.status_code == 302, url
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    location = response.headers["Location"]
    assert location.startswith(f"{seaweed.endpoint_url}/{seaweed.bucket}/")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(TTL)] and query["X-Amz-Signature"]
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200, fetched.text
    return location, fetched


def check_served(app, seaweed, stranger, link: str, image_id: int) -> list[str]:
    """The link's page and its file, download and thumbnail of one image come from the bucket; its URLs."""
    page = stranger.get(link)
    assert page.status_code == 200
    # The thumbnail <img> ends at the store's origin, which the page's policy must allow.
    assert f"img-src 'self' data: {seaweed.endpoint_url};" in page.headers["Content-Security-Policy"]
    urls = link_urls(page.get_data(as_text=True), link, image_id)
    image = row(app, image_id)
    for kind, name in (("file", image.file_name), ("download", image.file_name), ("thumb", image.thumb_name)):
        location, fetched = follow(stranger, urls[kind], seaweed)
        assert unquote(urlsplit(location).path) == f"/{seaweed.bucket}/{app.config['S3_PREFIX']}{name}"
        assert fetched.content == stored(app, seaweed, name), kind
    _, download = follow(stranger, urls["download"], seaweed)
    assert download.headers["Content-Disposition"].startswith("attachment; filename=01-the-named-lighthouse.")
    _, thumb = follow(stranger, urls["thumb"], seaweed)
    assert thumb.headers["Content-Type"] == "image/jpeg" and thumb.content[:3] == b"\xff\xd8\xff"
    return [link, *urls.values()]


def test_an_image_link_serves_its_files_as_presigned_urls_until_revoked(shared, seaweed):
    app, owner, headers, named, other, links = shared
    stranger = app.test_client()
    link = path_of(links["image"]["url"])
    urls = check_served(app, seaweed, stranger, link, named)
    assert "harbour" not in stranger.get(link).get_data(as_text=True)
    assert stranger.get(f"{link}/images/{other}/file").status_code == 404  # not what it names
    assert owner.delete(f"/api/share-links/{links['image']['id']}", headers=headers).status_code == 204
    for url in [*urls, f"{link}/images.zip"]:
        response = stranger.get(url)
        assert response.status_code == 404, url
        assert "Location" not in response.headers


def test_a_collection_link_serves_its_files_and_zip_from_the_bucket_until_revoked(shared, seaweed):
    app, owner, _, named, _, links = shared
    stranger = app.test_client()
    link = path_of(links["collection"]["url"])
    urls = check_served(app, seaweed, stranger, link, named)
    archive = zipfile.ZipFile(io.BytesIO(stranger.get(f"{link}/images.zip").get_data()))
    (name,) = archive.namelist()
    assert archive.read(name) == stored(app, seaweed, row(app, named).file_name)
    revoked = owner.post(f"/share-links/{links['collection']['id']}/revoke", data={"csrf_token": csrf_for(owner)})
    assert revoked.status_code == 303
    for url in [*urls, f"{link}/images.zip"]:
        response = stranger.get(url)
        assert response.status_code == 404, url
        assert "Location" not in response.headers
    # The image link is not touched by revoking the collection's.
    assert stranger.get(path_of(links["image"]["url"])).status_code == 200
