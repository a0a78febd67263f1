"""Export everything: one streamed ZIP of an account's image files and a manifest, from the account page, the API
and `flask users export`; only the account's own images, read back file by file."""

import hashlib
import io
import json
import zipfile

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import advance, make_batch, make_token, make_user
from tests_support import PASSWORD, bearer, sign_in

from app.accounts.users import require_user
from app.extensions import db
from app.media.export import INTERNAL_COLUMNS, MANIFEST, OPTION_COLUMNS, exported_columns
from app.models import Generation
from app.providers.options import OPTION_NAMES
from app.services import services

ANN, BOB = "ann@example.com", "bob@example.com"


@pytest.fixture
def app(accounts_app):
    make_user(accounts_app, ANN)
    make_user(accounts_app, BOB)
    return accounts_app


def made(app, email, count, prefix="a lighthouse"):
    """`count` images of this account, made by the real job with the demo provider; their generation ids."""
    _, ids = make_batch(app, *[f"{prefix} {n}" for n in range(count)], owner_email=email)
    drain(app)
    return ids


def read_zip(data: bytes) -> tuple[zipfile.ZipFile, dict]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return archive, json.loads(archive.read(MANIFEST))


def stored_bytes(app, generation_id):
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        stored = services(app).stores.get(generation.storage).open(generation.file_name)
        return b"".join(stored.chunks())


def test_fifty_images_come_out_as_fifty_files_and_a_manifest_that_reads_back(app):
    ids = made(app, ANN, 50)
    client = app.test_client()
    sign_in(client, ANN)
    response = client.get("/account/export.zip")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"].startswith('attachment; filename="image-generator-export-')
    archive, manifest = read_zip(response.get_data())
    images = [name for name in archive.namelist() if name != MANIFEST]
    assert len(images) == 50 and archive.namelist()[-1] == MANIFEST
    assert manifest["format"] == "image-generator-export/1" and manifest["account"]["email"] == ANN
    assert manifest["image_files"] == 50
    entries = manifest["generations"]
    assert [entry["id"] for entry in entries] == ids
    assert sorted(entry["file"] for entry in entries) == sorted(images)
    for entry in entries:
        assert archive.read(entry["file"]) == stored_bytes(app, entry["id"])
        assert entry["status"] == "succeeded" and entry["prompt"].startswith("a lighthouse")
        assert list(entry["options"]) == list(OPTION_NAMES)
        assert entry["seed_requested"] is None and isinstance(entry["seed_used"], int)
        assert entry["options"]["model"] == "core" and entry["created_at"] and entry["finished_at"]
        assert entry["batch_created_at"] and entry["position"] in range(50)


def test_the_manifest_keeps_seeds_options_and_generations_without_a_file(app):
    with app.test_request_context():
        from app.generations.lifecycle import create_batch
        from app.providers.options import GenerationOptions

        options = GenerationOptions(model="sd3.5-large", seed=41, negative_prompt="fog", cfg_scale=5.0,
                                    style_preset="anime", aspect_ratio="16:9", output_format="webp")
        batch = create_batch(require_user(ANN), ["a fox", "a failed one"], options)
        failed_id = batch.generations[1].id
    advance(app, failed_id, "failed", error="The API refused the prompt")
    drain(app)
    client = app.test_client()
    archive, manifest = read_zip(client.get("/api/export", headers=bearer(make_token(app, ANN))).get_data())
    made_one, failed = manifest["generations"]
    assert made_one["options"] == {"model": "sd3.5-large", "aspect_ratio": "16:9", "style_preset": "anime",
                                   "output_format": "webp", "seed": 41, "cfg_scale": 5.0, "negative_prompt": "fog"}
    assert made_one["seed_requested"] == 41 and made_one["seed_used"] == 41
    assert made_one["file"].endswith(".webp") and made_one["file"] in archive.namelist()
    assert failed["file"] is None and failed["status"] == "failed" and failed["error"] == "The API refused the prompt"
    assert len(archive.namelist()) == 2


def test_each_token_exports_only_its_own_accounts_images_admins_included(app):
    make_user(app, "admin@example.com", admin=True)
    ann_ids, bob_ids = made(app, ANN, 3, "ann's"), made(app, BOB, 2, "bob's")
    made(app, "admin@example.com", 1, "the admin's")
    for email, ids, words in ((ANN, ann_ids, "ann-s"), (BOB, bob_ids, "bob-s")):
        response = app.test_client().get("/api/export", headers=bearer(make_token(app, email)))
        archive, manifest = read_zip(response.get_data())
        assert [entry["id"] for entry in manifest["generations"]] == ids
        assert all(words in name for name in archive.namelist() if name != MANIFEST)
    _, manifest = read_zip(app.test_client().get(
        "/api/export", headers=bearer(make_token(app, "admin@example.com"))).get_data())
    assert [entry["prompt"] for entry in manifest["generations"]] == ["the admin's 0"]


def test_an_account_without_images_gets_a_zip_with_only_the_manifest(app):
    client = app.test_client()
    sign_in(client, BOB)
    archive, manifest = read_zip(client.get("/account/export.zip").get_data())
    assert archive.namelist() == [MANIFEST] and manifest["generations"] == [] and manifest["image_files"] == 0


def test_the_export_needs_a_session_or_a_token(app):
    assert app.test_client().get("/api/export").status_code == 401
    assert app.test_client().get("/account/export.zip").status_code == 302
    # A token opens the API's export, not the account page's.
    assert app.test_client().get("/account/export.zip", headers=bearer(make_token(app, ANN))).status_code == 401


def test_a_file_gone_from_the_store_is_left_out_and_the_manifest_says_so(app):
    first, second = made(app, ANN, 2)
    with app.app_context():
        generation = db.session.get(Generation, first)
        services(app).stores.get(generation.storage).delete(generation.file_name)
    archive, manifest = read_zip(app.test_client().get("/api/export", headers=bearer(make_token(app, ANN))).get_data())
    assert [entry["file"] is None for entry in manifest["generations"]] == [True, False]
    assert len(archive.namelist()) == 2 and manifest["image_files"] == 1


def test_files_are_opened_one_at_a_time_as_the_download_is_read(app, monkeypatch):
    made(app, ANN, 5)
    store = services(app).stores.get("local")
    opened, real_open = [], store.open
    monkeypatch.setattr(store, "open", lambda key: opened.append(key) or real_open(key))
    response = app.test_client().get("/api/export", headers=bearer(make_token(app, ANN)))
    assert len(opened) == 1  # the first file, opened before the answer starts
    chunks = iter(response.response)
    next(chunks)
    assert len(opened) < 5
    b"".join(chunks)
    assert len(opened) == 5


def test_flask_users_export_writes_the_same_zip(app, tmp_path):
    ids = made(app, ANN, 3)
    out = tmp_path / "ann.zip"
    result = app.test_cli_runner().invoke(args=["users", "export", ANN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}: 3 image files and manifest.json." in result.output
    archive, manifest = read_zip(out.read_bytes())
    assert [entry["id"] for entry in manifest["generations"]] == ids
    assert hashlib.sha256(archive.read(manifest["generations"][0]["file"])).digest() == hashlib.sha256(
        stored_bytes(app, ids[0])).digest()
    assert not list(tmp_path.glob("*.part"))
    missing = app.test_cli_runner().invoke(args=["users", "export", "nobody@example.com"])
    assert missing.exit_code == 1 and "No account has the email nobody@example.com." in missing.output


def test_every_column_is_exported_or_named_internal():
    """A new column (a lineage field, say) must be put in the manifest or named internal on purpose."""
    columns = {column.key for column in sa.inspect(Generation).column_attrs}
    assert set(exported_columns()) == columns - INTERNAL_COLUMNS - OPTION_COLUMNS
    assert not set(exported_columns()) & {"owner_id", "job_id", "file_name", "storage"}
    assert {"prompt", "status", "seed", "history", "attempts", "created_at", "finished_at"} <= set(exported_columns())


def test_the_account_page_links_the_export_and_the_deletion(app):
    client = app.test_client()
    sign_in(client, ANN)
    page = client.get("/account").get_data(as_text=True)
    assert 'href="/account/export.zip"' in page and 'href="/account/delete"' in page
    assert PASSWORD not in page
