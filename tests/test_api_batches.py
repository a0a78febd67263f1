"""POST /api/batches and the batch endpoints: the form's rules, the allowance, ownership, Idempotency-Key."""

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from factories import make_token, make_user
from tests_support import bearer

from app.accounts.users import require_user
from app.extensions import db
from app.generations import spending
from app.models import Batch, Generation, IdempotentRequest, Status, utcnow
from app.providers.options import DEFAULT_OPTIONS


@pytest.fixture
def ann(accounts_app):
    """A member with a token, and a client that sends it."""
    make_user(accounts_app, "ann@example.com")
    return accounts_app.test_client(), bearer(make_token(accounts_app, "ann@example.com"))


def post(client, headers, body, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/api/batches", json=body, headers={**headers, **extra})


def used_credits(app, email):
    with app.app_context():
        return spending.used(spending.user_scope(require_user(email).id))


def count(app, model):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_submitting_queues_one_image_per_prompt_and_answers_201_with_the_batch(accounts_app, ann):
    client, auth = ann
    response = post(client, auth, {"prompts": ["a red fox", "  ", "a blue heron"], "model": "sd3.5-large",
                                   "aspect_ratio": "16:9", "seed": 42, "cfg_scale": 5.5, "style_preset": "anime"})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"http://localhost/api/batches/{body['id']}" == body["url"]
    assert [g["prompt"] for g in body["generations"]] == ["a red fox", "a blue heron"]  # blank ones skipped
    assert {g["status"] for g in body["generations"]} == {"queued"}
    assert body["options"] == {**DEFAULT_OPTIONS.as_dict(), "model": "sd3.5-large", "aspect_ratio": "16:9",
                               "style_preset": "anime", "seed": 42, "cfg_scale": 5.5}
    assert body["cost"] == {"credits_per_image": 6.5, "credits": 13.0, "reserved": 13.0, "refunded": 0}
    assert body["progress"] == {"total": 2, "succeeded": 0, "failed": 0, "pending": 2}
    assert body["done"] is False and body["finished_at"] is None
    assert body["page_url"].endswith(f"/generate/{body['id']}")
    assert used_credits(accounts_app, "ann@example.com") == 13.0


def test_invalid_values_get_the_forms_messages_per_field_and_nothing_is_made(accounts_app, ann):
    client, auth = ann
    response = post(client, auth, {"prompts": ["ok", "fine", "x" * 10001, "a\x00b"], "model": "sdxl",
                                   "aspect_ratio": "7:3", "seed": 4_294_967_295, "cfg_scale": 11,
                                   "negative_prompt": "\x07"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert error["fields"] == {
        "prompts[2]": "This is 10001 characters long; the limit is 10000.",
        "prompts[3]": "Remove the invisible control character U+0000 at position 2.",
        "model": "Not a valid choice.",
        "aspect_ratio": "Not a valid choice.",
        "seed": "Use a whole number from 0 to 4,294,967,294, or leave it empty.",
        "cfg_scale": "Use a number from 1 to 10, or leave it empty.",
        "negative_prompt": "Remove the invisible control character U+0007 at position 1.",
    }
    assert count(accounts_app, Batch) == 0 and used_credits(accounts_app, "ann@example.com") == 0


@pytest.mark.parametrize(("body", "fields"), [
    ({"prompts": []}, {"prompts": "Write at least one prompt."}),
    ({"prompts": [" ", ""]}, {"prompts": "Write at least one prompt."}),
    ({"prompts": ["p"] * 11}, {"prompts": "11 prompts is more than the 10 one batch may hold; remove 1."}),
    ({}, {"prompts": "Missing data for required field."}),
    ({"prompts": ["a", 3]}, {"prompts[1]": "Not a valid string."}),
    ({"prompts": ["a"], "seed": "12"}, {"seed": "Not a valid integer."}),
    ({"prompts": ["a"], "cfg_scale": "2"}, {"cfg_scale": "Not a valid number."}),
    ({"prompts": ["a"], "colour": "red"}, {"colour": "Unknown field."}),
])
def test_shape_and_batch_rules_are_422_with_the_field_named(ann, body, fields):
    client, auth = ann
    response = post(client, auth, body)
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == fields


def test_a_body_that_is_not_json_is_a_400_in_the_api_shape(ann):
    client, auth = ann
    response = client.post("/api/batches", data="{not json", content_type="application/json", headers=auth)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"


def test_over_the_allowance_is_402_and_nothing_is_made(accounts_app):
    make_user(accounts_app, "cap@example.com", monthly_credits=5)
    client, auth = accounts_app.test_client(), bearer(make_token(accounts_app, "cap@example.com"))
    response = post(client, auth, {"prompts": ["a", "b"]})  # 2 x 3 credits
    assert response.status_code == 402
    assert response.get_json()["error"] == {"code": "over_allowance", "message":
                                            "This batch costs 6 credits; you have 5 left this month."}
    assert count(accounts_app, Batch) == 0
    assert post(client, auth, {"prompts": ["a"]}).status_code == 201


def test_a_batch_reads_back_with_options_cost_times_and_image_links(accounts_app, ann):
    from conftest import drain

    client, auth = ann
    batch_id = post(client, auth, {"prompts": ["one", "two"]}).get_json()["id"]
    drain(accounts_app)
    body = client.get(f"/api/batches/{batch_id}", headers=auth).get_json()
    assert body["done"] is True and body["progress"]["succeeded"] == 2
    assert body["finished_at"] is not None and body["zip_url"].endswith(f"/generate/{batch_id}/images.zip")
    image = body["generations"][0]["image"]
    assert re.fullmatch(rf"http://localhost/images/{body['generations'][0]['id']}/file\?v=[0-9a-f]{{12}}",
                        image["file_url"])
    assert body["generations"][0]["seed"] is not None and body["generations"][0]["started_at"] is not None
    with client.get(image["download_url"], headers=auth) as download:  # the same token opens the file
        assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    with client.get(body["zip_url"], headers=auth) as archive:
        assert archive.status_code == 200 and archive.mimetype == "application/zip"
    assert client.get(image["file_url"]).status_code == 302  # without the token: to the sign-in page


def test_batches_list_newest_first_in_pages(accounts_app, ann):
    client, auth = ann
    ids = [post(client, auth, {"prompts": [f"p{i}"]}).get_json()["id"] for i in range(5)]
    first = client.get("/api/batches?limit=2", headers=auth).get_json()
    assert [b["id"] for b in first["items"]] == ids[:-3:-1]
    assert first["items"][0]["progress"] == {"total": 1, "succeeded": 0, "failed": 0, "pending": 1}
    second = client.get(f"/api/batches?limit=2&before={first['next']}", headers=auth).get_json()
    third = client.get(f"/api/batches?limit=2&before={second['next']}", headers=auth).get_json()
    assert [b["id"] for b in second["items"] + third["items"]] == ids[2::-1]
    assert third["next"] is None
    assert client.get("/api/batches?limit=101", headers=auth).status_code == 422
    assert client.get("/api/batches?before=0-0", headers=auth).get_json() == {"items": [], "next": None}
    assert client.get("/api/batches?before=soon", headers=auth).get_json()["error"]["fields"] == {
        "before": "String does not match expected pattern."}


def test_cancelling_a_batch_stops_its_queued_images_and_refunds_them(accounts_app, ann):
    client, auth = ann
    batch_id = post(client, auth, {"prompts": ["a", "b"]}).get_json()["id"]
    response = client.post(f"/api/batches/{batch_id}/cancel", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["canceled"] == 2 and body["batch"]["done"] is True
    assert {g["status"] for g in body["batch"]["generations"]} == {"canceled"}
    assert used_credits(accounts_app, "ann@example.com") == 0 and body["batch"]["cost"]["credits"] == 0


def test_someone_elses_batch_is_404_everywhere_and_an_admin_sees_it(accounts_app, ann):
    client, auth = ann
    batch = post(client, auth, {"prompts": ["mine"]}).get_json()
    make_user(accounts_app, "bob@example.com")
    make_user(accounts_app, "root@example.com", admin=True)
    bob = bearer(make_token(accounts_app, "bob@example.com"))
    generation_id = batch["generations"][0]["id"]
    for method, url in (("get", f"/api/batches/{batch['id']}"), ("post", f"/api/batches/{batch['id']}/cancel"),
                        ("post", f"/api/generations/{generation_id}/cancel"),
                        ("post", f"/api/generations/{generation_id}/retry")):
        response = getattr(client, method)(url, headers=bob)
        assert response.status_code == 404, url
        assert response.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/batches", headers=bob).get_json()["items"] == []
    admin = bearer(make_token(accounts_app, "root@example.com"))
    assert client.get(f"/api/batches/{batch['id']}", headers=admin).status_code == 200
    assert client.get(f"/api/batches/{batch['id']}", headers=auth).status_code == 200


def test_the_same_idempotency_key_and_body_return_the_first_answer_and_charge_once(accounts_app, ann):
    client, auth = ann
    body = {"prompts": ["a lighthouse", "a harbour"], "model": "core"}
    first = post(client, auth, body, key="nightly-2026-12-01")
    again = post(client, auth, {"model": "core", "prompts": ["a lighthouse", "a harbour"]}, key="nightly-2026-12-01")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert count(accounts_app, Batch) == 1 and count(accounts_app, Generation) == 2
    assert used_credits(accounts_app, "ann@example.com") == 6


def test_the_same_key_with_another_body_is_422_and_makes_nothing(accounts_app, ann):
    client, auth = ann
    post(client, auth, {"prompts": ["a"]}, key="k-1")
    response = post(client, auth, {"prompts": ["b"]}, key="k-1")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert count(accounts_app, Batch) == 1


def test_keys_are_per_user_and_expire_after_a_day(accounts_app, ann):
    client, auth = ann
    make_user(accounts_app, "bob@example.com")
    bob = bearer(make_token(accounts_app, "bob@example.com"))
    first = post(client, auth, {"prompts": ["a"]}, key="k").get_json()["id"]
    assert post(client, bob, {"prompts": ["b"]}, key="k").get_json()["id"] != first
    with accounts_app.app_context():
        db.session.execute(sa.update(IdempotentRequest).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    assert post(client, auth, {"prompts": ["a"]}, key="k").get_json()["id"] != first


def test_a_refused_request_keeps_nothing_so_the_key_can_be_sent_again(accounts_app):
    make_user(accounts_app, "cap@example.com", monthly_credits=3)
    client, auth = accounts_app.test_client(), bearer(make_token(accounts_app, "cap@example.com"))
    assert post(client, auth, {"prompts": ["a", "b"]}, key="k").status_code == 402
    assert post(client, auth, {"prompts": [""]}, key="k").status_code == 422
    assert post(client, auth, {"prompts": ["a"]}, key="k").status_code == 201
    assert count(accounts_app, IdempotentRequest) == 1


def test_an_idempotency_key_must_be_printable_ascii(ann):
    client, auth = ann
    response = post(client, auth, {"prompts": ["a"]}, key="x" * 256)
    assert response.status_code == 422 and "Idempotency-Key" in response.get_json()["error"]["fields"]


def test_concurrent_requests_with_one_key_make_one_batch(accounts_app, ann):
    if accounts_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    _, auth = ann
    barrier = threading.Barrier(4)
    answers = []

    def send():
        client = accounts_app.test_client()
        barrier.wait()
        answers.append(post(client, auth, {"prompts": ["same", "body"]}, key="race"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert count(accounts_app, Batch) == 1 and used_credits(accounts_app, "ann@example.com") == 6
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3


def test_a_batch_made_through_the_api_is_the_same_as_one_made_with_the_form(accounts_app, ann):
    client, auth = ann
    batch_id = post(client, auth, {"prompts": ["a fox"], "seed": 0}).get_json()["id"]
    with accounts_app.app_context():
        generation = db.session.scalar(sa.select(Generation).where(Generation.batch_id == batch_id))
        assert generation.requested_seed is None  # 0 means random, as on the form
        assert generation.status == Status.QUEUED and generation.job_id


def test_the_api_takes_images_per_prompt_and_counts_a_given_seed_up(accounts_app, ann):
    client, auth = ann
    response = post(client, auth, {"prompts": ["a fox"], "images_per_prompt": 2, "seed": 9})
    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["generations"]) == 2
    with accounts_app.app_context():
        assert db.session.scalars(sa.select(Generation.requested_seed).order_by(Generation.position)).all() == [9, 10]
    assert count(accounts_app, Batch) == 1
