"""The gallery through the API, one image's metadata, deleting it, and cancelling or retrying a generation."""

from pathlib import Path

import pytest
from conftest import drain
from factories import advance, make_token, make_user
from tests_support import bearer

from app.extensions import db
from app.models import Batch, Generation, Status


@pytest.fixture
def ann(accounts_app):
    make_user(accounts_app, "ann@example.com", monthly_credits=12)
    return accounts_app.test_client(), bearer(make_token(accounts_app, "ann@example.com"))


def submit(client, auth, *prompts, **options):
    response = client.post("/api/batches", json={"prompts": list(prompts), **options}, headers=auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()




def test_the_gallery_lists_images_newest_first_with_filters_and_pages(accounts_app, ann):
    client, auth = ann
    submit(client, auth, "a red fox", "a grey wolf", "a red kite", model="core")
    drain(accounts_app)
    everything = client.get("/api/images", headers=auth).get_json()
    assert [i["prompt"] for i in everything["items"]] == ["a red kite", "a grey wolf", "a red fox"]
    assert everything["next"] is None
    red = client.get("/api/images?q=RED&status=succeeded&model=core", headers=auth).get_json()
    assert [i["prompt"] for i in red["items"]] == ["a red kite", "a red fox"]
    first = client.get("/api/images?limit=2", headers=auth).get_json()
    rest = client.get(f"/api/images?limit=2&before={first['next']}", headers=auth).get_json()
    assert [i["prompt"] for i in first["items"] + rest["items"]] == ["a red kite", "a grey wolf", "a red fox"]
    assert client.get("/api/images?status=failed", headers=auth).status_code == 422  # failures have no image
    assert client.get("/api/images?limit=0", headers=auth).get_json()["error"]["fields"] == {
        "limit": "Must be greater than or equal to 1 and less than or equal to 100."}


def test_an_image_has_all_its_metadata_and_links_that_open_with_the_token(accounts_app, ann):
    client, auth = ann
    batch = submit(client, auth, "a lighthouse", aspect_ratio="16:9", output_format="webp", seed=7)
    drain(accounts_app)
    image_id = batch["generations"][0]["id"]
    image = client.get(f"/api/images/{image_id}", headers=auth).get_json()
    assert image["prompt"] == "a lighthouse" and image["status"] == "succeeded" and image["batch_id"] == batch["id"]
    assert image["options"]["aspect_ratio"] == "16:9" and image["options"]["seed"] == 7
    assert image["mime_type"] == "image/webp" and image["width"] > image["height"] and image["byte_size"] > 0
    assert image["provider"] == "demo"
    for key in ("file_url", "thumb_url", "download_url"):
        with client.get(image[key], headers=auth) as response:
            assert response.status_code == 200, key
    with client.get(image["file_url"], headers=auth) as response:
        assert response.data[8:12] == b"WEBP" and "immutable" in response.headers["Cache-Control"]


def test_a_generation_without_an_image_is_not_an_image(accounts_app, ann):
    client, auth = ann
    image_id = submit(client, auth, "still queued")["generations"][0]["id"]
    assert client.get(f"/api/images/{image_id}", headers=auth).status_code == 404
    assert client.delete(f"/api/images/{image_id}", headers=auth).status_code == 404


def test_deleting_an_image_removes_its_row_files_and_emptied_batch(accounts_app, ann):
    client, auth = ann
    batch = submit(client, auth, "only one")
    drain(accounts_app)
    image_id = batch["generations"][0]["id"]
    with accounts_app.app_context():
        stored = db.session.get(Generation, image_id)
        files = [Path(accounts_app.config["MEDIA_ROOT"]) / name for name in (stored.file_name, stored.thumb_name)]
    assert all(path.exists() for path in files)
    response = client.delete(f"/api/images/{image_id}", headers=auth)
    assert response.status_code == 204 and response.data == b""
    assert not any(path.exists() for path in files)
    with accounts_app.app_context():
        assert db.session.get(Batch, batch["id"]) is None
    assert client.get(f"/api/images/{image_id}", headers=auth).status_code == 404


def test_someone_elses_image_is_404_and_missing_from_their_gallery(accounts_app, ann):
    client, auth = ann
    image_id = submit(client, auth, "mine")["generations"][0]["id"]
    drain(accounts_app)
    make_user(accounts_app, "bob@example.com")
    bob = bearer(make_token(accounts_app, "bob@example.com"))
    assert client.get(f"/api/images/{image_id}", headers=bob).status_code == 404
    assert client.delete(f"/api/images/{image_id}", headers=bob).status_code == 404
    assert client.get(f"/images/{image_id}/file", headers=bob).status_code == 404
    assert client.get("/api/images", headers=bob).get_json()["items"] == []
    assert client.get(f"/api/images/{image_id}", headers=auth).status_code == 200


def test_cancel_stops_a_queued_generation_and_a_finished_one_is_409(accounts_app, ann):
    client, auth = ann
    ids = [g["id"] for g in submit(client, auth, "a", "b")["generations"]]
    response = client.post(f"/api/generations/{ids[0]}/cancel", headers=auth)
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    again = client.post(f"/api/generations/{ids[0]}/cancel", headers=auth)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_finished"


def test_retry_queues_a_failed_generation_again_and_refuses_others(accounts_app, ann):
    client, auth = ann
    ids = [g["id"] for g in submit(client, auth, "a", "b")["generations"]]
    refused = client.post(f"/api/generations/{ids[1]}/retry", headers=auth)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_retryable"
    advance(accounts_app, ids[0], Status.FAILED, error="Could not reach the Stability API")
    retried = client.post(f"/api/generations/{ids[0]}/retry", headers=auth)
    assert retried.status_code == 200
    assert retried.get_json()["status"] == "queued" and retried.get_json()["error"] is None


def test_retry_over_the_allowance_is_402_and_changes_nothing(accounts_app, ann):
    client, auth = ann
    generation_id = submit(client, auth, "a", "b", "c", "d")["generations"][0]["id"]  # 12 of 12 credits
    advance(accounts_app, generation_id, Status.FAILED, error="x")  # refunded: 9 of 12
    submit(client, auth, "e")  # 12 of 12 again
    response = client.post(f"/api/generations/{generation_id}/retry", headers=auth)
    assert response.status_code == 402 and response.get_json()["error"]["code"] == "over_allowance"
    with accounts_app.app_context():
        assert db.session.get(Generation, generation_id).status == Status.FAILED


def test_me_says_who_and_what_is_left_this_month(accounts_app, ann):
    client, auth = ann
    submit(client, auth, "a")
    me = client.get("/api/me", headers=auth).get_json()
    assert me["email"] == "ann@example.com" and me["role"] == "member" and me["auth_mode"] == "accounts"
    assert me["credits"]["used"] == 3 and me["credits"]["limit"] == 12 and me["credits"]["left"] == 9
