"""The API's variations: expand and samples, grids with cells and their PNG, the preview that creates nothing,
and wildcard lists under /api/wildcards."""

import io

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_token, make_user
from PIL import Image
from tests_support import bearer

from app.extensions import db
from app.models import Batch, Generation
from app.variations.grid_image import CELL, HEADER_HEIGHT, ROW_LABEL_WIDTH


@pytest.fixture
def ann(accounts_app):
    make_user(accounts_app, "ann@example.com")
    return accounts_app.test_client(), bearer(make_token(accounts_app, "ann@example.com"))


def count(app, model):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_combinatorial_expand_makes_exactly_the_four_prompts(accounts_app, ann):
    client, auth = ann
    response = client.post("/api/batches", headers=auth,
                           json={"prompts": ["a {red|blue} {fox|owl}"], "expand": "combinatorial"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [g["prompt"] for g in body["generations"]] == ["a red fox", "a red owl", "a blue fox", "a blue owl"]
    assert body["grid"] is None and body["grid_image_url"] is None
    assert {g["cell"] is None for g in body["generations"]} == {True}


def test_random_picks_with_a_locked_seed_are_the_same_twice(accounts_app, ann):
    client, auth = ann
    body = {"prompts": ["a {red|blue|green|amber} {fox|owl|heron} at {dawn|dusk}"], "expand": "random",
            "samples": 5, "seed": 4242}
    first, second = (client.post("/api/batches", headers=auth, json=body).get_json() for _ in range(2))
    assert [g["prompt"] for g in first["generations"]] == [g["prompt"] for g in second["generations"]]
    assert len(first["generations"]) == 5


def test_the_preview_answers_what_the_batch_would_reserve_and_creates_nothing(accounts_app, ann):
    client, auth = ann
    body = {"prompts": ["a fox"], "grid": {"x": {"option": "model", "values": ["core", "sd3.5-flash"]},
                                           "y": {"option": "style_preset", "values": ["anime", "photographic"]}}}
    preview = client.post("/api/batches/preview", headers=auth, json=body)
    assert preview.status_code == 200
    assert preview.get_json() == {"prompts": ["a fox"], "images": 4, "credits": 11.0}
    assert count(accounts_app, Batch) == 0
    made = client.post("/api/batches", headers=auth, json={**body, "expected_credits": 11}).get_json()
    assert made["cost"]["reserved"] == 11.0


def test_past_max_images_the_api_refuses_with_the_count(accounts_app, ann):
    client, auth = ann
    response = client.post("/api/batches", headers=auth, json={
        "prompts": ["{a|b|c|d|e|f|g|h|i|j} {a|b|c|d|e|f|g|h|i|j} {x|y}"], "expand": "combinatorial"})
    assert response.status_code == 422
    assert "would make 200 images" in response.get_json()["error"]["fields"]["prompts"]
    assert count(accounts_app, Batch) == 0


def test_a_wrong_axis_is_named_in_the_fields(accounts_app, ann):
    client, auth = ann
    response = client.post("/api/batches", headers=auth, json={
        "prompts": ["a fox"], "grid": {"x": {"option": "model", "values": ["core", "sdxl"]}}})
    assert response.status_code == 422
    assert "'sdxl' is not a model" in response.get_json()["error"]["fields"]["grid.x.values"]


def test_a_grid_reaches_the_right_endpoints_and_its_png_holds_two_by_two_cells(make_app, fake):
    from conftest import API_KEY
    app = make_app(AUTH_MODE="accounts", STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url)
    make_user(app, "ann@example.com")
    client, auth = app.test_client(), bearer(make_token(app, "ann@example.com"))
    body = client.post("/api/batches", headers=auth, json={
        "prompts": ["a lighthouse"], "seed": 77,
        "grid": {"x": {"option": "model", "values": ["core", "sd3.5-flash"]},
                 "y": {"option": "style_preset", "values": ["anime", "photographic"]}}}).get_json()
    assert body["grid"] == {"x": {"option": "model", "values": ["core", "sd3.5-flash"]},
                            "y": {"option": "style_preset", "values": ["anime", "photographic"]}}
    assert [g["cell"] for g in body["generations"]] == [
        {"x": 0, "y": 0, "z": None}, {"x": 1, "y": 0, "z": None}, {"x": 0, "y": 1, "z": None},
        {"x": 1, "y": 1, "z": None}]
    drain(app)
    sent = sorted((r.path, r.form.get("model"), r.form.get("style_preset"), r.form.get("seed"))
                  for r in fake.generate_requests)
    assert sent == sorted([
        ("/v2beta/stable-image/generate/core", None, "anime", "77"),
        ("/v2beta/stable-image/generate/core", None, "photographic", "77"),
        ("/v2beta/stable-image/generate/sd3", "sd3.5-flash", "anime", "77"),
        ("/v2beta/stable-image/generate/sd3", "sd3.5-flash", "photographic", "77")])
    done = client.get(body["url"], headers=auth).get_json()
    assert done["grid_image_url"].endswith(f"/generate/{body['id']}/grid.png")
    png = client.get(done["grid_image_url"], headers=auth)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert Image.open(io.BytesIO(png.data)).size == (ROW_LABEL_WIDTH + 2 * CELL, HEADER_HEIGHT + 2 * CELL)


def test_someone_elses_grid_png_is_404(accounts_app, ann):
    client, auth = ann
    body = client.post("/api/batches", headers=auth, json={
        "prompts": ["a fox"], "grid": {"x": {"option": "seed", "values": [1, 2]}}}).get_json()
    make_user(accounts_app, "eve@example.com")
    eve = bearer(make_token(accounts_app, "eve@example.com"))
    assert client.get(f"/generate/{body['id']}/grid.png", headers=eve).status_code == 404


def test_wildcards_are_per_user_and_a_template_reads_them(accounts_app, ann):
    client, auth = ann
    made = client.post("/api/wildcards", headers=auth, json={"name": "colors", "values": ["red", "blue"]})
    assert made.status_code == 201
    listed = client.get("/api/wildcards", headers=auth).get_json()["items"]
    assert [(w["name"], w["values"], w["mine"]) for w in listed] == [("colors", ["red", "blue"], True)]
    assert client.post("/api/wildcards", headers=auth, json={"name": "colors", "values": ["x"]}).status_code == 409
    wid = made.get_json()["id"]
    put = client.put(f"/api/wildcards/{wid}", headers=auth, json={"name": "colors", "values": ["teal", "amber"]})
    assert put.get_json()["values"] == ["teal", "amber"]
    preview = client.post("/api/batches/preview", headers=auth,
                          json={"prompts": ["a __colors__ fox"], "expand": "combinatorial"}).get_json()
    assert preview["prompts"] == ["a teal fox", "a amber fox"]
    make_user(accounts_app, "eve@example.com")
    eve = bearer(make_token(accounts_app, "eve@example.com"))
    assert client.get(f"/api/wildcards/{wid}", headers=eve).status_code == 404
    assert client.delete(f"/api/wildcards/{wid}", headers=eve).status_code == 404
    refused = client.post("/api/batches/preview", headers=eve,
                          json={"prompts": ["a __colors__ fox"], "expand": "combinatorial"})
    assert refused.status_code == 422 and "__colors__" in refused.get_json()["error"]["fields"]["prompts"]
    shared = client.post("/api/wildcards", headers=auth, json={"name": "birds", "values": ["owl"], "shared": True})
    assert shared.status_code == 403 and "Only an admin" in shared.get_json()["error"]["message"]
    assert client.delete(f"/api/wildcards/{wid}", headers=auth).status_code == 204
    assert count(accounts_app, Generation) == 0
