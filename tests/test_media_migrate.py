"""`flask media migrate`: local files to a real bucket and back, checked, resumable, with a dry run."""

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import s3_settings
from factories import make_images

from app.extensions import db
from app.media import moving
from app.models import Generation
from app.services import services

pytestmark = pytest.mark.s3


def storages(app):
    with app.app_context():
        return list(db.session.scalars(sa.select(Generation.storage).order_by(Generation.id)))


def local_files(app):
    return sorted(str(p.relative_to(app.config["MEDIA_ROOT"])) for p in Path(app.config["MEDIA_ROOT"]).rglob("*")
                  if p.is_file())


@pytest.fixture
def local_install(make_app, seaweed, tmp_path):
    """An install with three images on the local disk, configured with a bucket it has not used yet."""
    settings = s3_settings(seaweed, MEDIA_ROOT=str(tmp_path / "media"))
    before = make_app(**{**settings, "MEDIA_STORAGE": "local"})
    make_images(before, "one", "two", "three")
    return before, settings


def migrate(app, *args):
    return app.test_cli_runner().invoke(args=["media", "migrate", *args])


def test_a_dry_run_says_what_it_would_copy_and_changes_nothing(local_install, seaweed):
    app, settings = local_install
    result = migrate(app, "--to", "s3", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Would move 3 images to s3." in result.output
    assert "Would copy 6 files" in result.output and "Nothing was changed." in result.output
    assert storages(app) == ["local"] * 3 and seaweed.keys(settings["S3_PREFIX"]) == []


def test_moving_to_s3_and_back_checks_every_file_and_switches_the_rows(local_install, make_app, seaweed):
    app, settings = local_install
    files = local_files(app)
    result = migrate(app, "--to", "s3")
    assert result.exit_code == 0, result.output
    assert "Moved 3 images to s3: copied 6 files" in result.output and "SHA-256" in result.output
    assert storages(app) == ["s3"] * 3
    assert seaweed.keys(settings["S3_PREFIX"]) == sorted(settings["S3_PREFIX"] + name for name in files)
    # Restarted on S3 with MEDIA_ROOT gone: every page and file still works.
    shutil.rmtree(app.config["MEDIA_ROOT"])
    after = make_app(**settings)
    client = after.test_client()
    with after.app_context():
        generations = list(db.session.scalars(sa.select(Generation).order_by(Generation.id)))
    for generation in generations:
        assert client.get(f"/images/{generation.id}").status_code == 200
        assert client.get(f"/images/{generation.id}/file").status_code == 302
        assert client.get(f"/images/{generation.id}/thumb").status_code == 200
    assert client.get(f"/generate/{generations[0].batch_id}/images.zip").status_code == 200
    back = migrate(after, "--to", "local", "--delete-source")
    assert back.exit_code == 0, back.output
    assert storages(after) == ["local"] * 3 and local_files(after) == files
    assert seaweed.keys(settings["S3_PREFIX"]) == []
    assert migrate(after, "--to", "local").output.startswith("Moving 0 images to local.")


def test_rows_in_either_store_are_served_during_a_move(local_install, make_app):
    app, settings = local_install
    with app.app_context():
        first = db.session.scalars(sa.select(Generation).order_by(Generation.id)).first()
        moving.move_row(services(app).stores, moving.RowToMove(first.id, "local", first.file_name, first.thumb_name),
                        "s3", dry_run=False, report=moving.MoveReport())
    assert storages(app) == ["s3", "local", "local"]
    for current in (app, make_app(**settings)):  # MEDIA_STORAGE=local and MEDIA_STORAGE=s3
        client = current.test_client()
        with current.app_context():
            ids = list(db.session.scalars(sa.select(Generation.id).order_by(Generation.id)))
        assert client.get(f"/images/{ids[0]}/file").status_code == 302  # from the bucket
        assert client.get(f"/images/{ids[1]}/file").status_code == 200  # from the disk
        assert client.get(f"/images/{ids[1]}/thumb").status_code == 200


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in the middle of a copy."""


def test_an_interrupted_move_resumes_without_copying_any_file_twice(local_install, monkeypatch):
    app, settings = local_install
    s3 = services(app).stores.get("s3")
    real_put, puts = s3.put, []

    def counting_put(name, data, content_type):
        if len(puts) == 3:  # the second image's file is in, its thumbnail not yet: the row is not switched
            raise Interrupted
        puts.append(name)
        real_put(name, data, content_type)

    monkeypatch.setattr(s3, "put", counting_put)
    with pytest.raises(Interrupted), app.app_context():
        for row in moving.rows_to_move("s3"):
            moving.move_row(services(app).stores, row, "s3", dry_run=False, report=moving.MoveReport())
    assert storages(app) == ["s3", "local", "local"]
    puts.append("(restart)")
    result = migrate(app, "--to", "s3")
    assert result.exit_code == 0, result.output
    assert "copied 3 files" in result.output and "1 already there" in result.output
    copied = [name for name in puts if name != "(restart)"]
    assert len(copied) == len(set(copied)) == 6
    assert storages(app) == ["s3"] * 3


def test_a_file_missing_from_disk_is_reported_and_its_row_left(local_install):
    app, _ = local_install
    with app.app_context():
        name = db.session.scalars(sa.select(Generation.file_name).order_by(Generation.id)).first()
    (Path(app.config["MEDIA_ROOT"]) / name).unlink()
    result = migrate(app, "--to", "s3")
    assert result.exit_code == 1
    assert "1 images have a missing file and were left as they are" in result.output
    assert storages(app) == ["local", "s3", "s3"]


def test_moving_needs_the_bucket_configured(make_app):
    result = make_app().test_cli_runner().invoke(args=["media", "migrate", "--to", "s3"])
    assert result.exit_code != 0 and "S3_BUCKET is not set" in result.output
