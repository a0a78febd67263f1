"""When the store is down: jobs retry, then fail the row and leave nothing behind; pages answer a clear 503."""

import logging
import time

import pytest
from conftest import drain, s3_settings
from factories import advance, make_batch
from seaweed import SeaweedFS
from tests_support import rows

from app.generations.reaper import sweep
from app.media_store import orphans
from app.media_store.s3 import S3Store
from app.models import Status
from app.processes.group import free_port
from app.services import services
from app.worker.jobs import STORE_FAILED

pytestmark = pytest.mark.s3
UNREACHABLE = "The image store is not reachable right now"


@pytest.fixture
def dead_store_settings(seaweed):
    """S3 settings pointing at a port where nothing listens."""
    return s3_settings(seaweed, S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}")


def test_a_job_whose_store_is_unreachable_retries_then_fails_with_a_reason(make_app, dead_store_settings, caplog):
    app = make_app(**dead_store_settings, MEDIA_STORE_ATTEMPTS=3)
    _, ids = make_batch(app, "a cat")
    with caplog.at_level(logging.INFO, logger="app.worker.jobs"):
        drain(app)
    (generation,) = rows(app, ids)
    assert (generation.status, generation.error) == ("failed", STORE_FAILED)
    assert generation.file_name is None and generation.refunded
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "storing attempt 1/3" in r.message)) == 1
    assert any("storing attempt 2/3" in r.message for r in caplog.records)
    # Neither name could be deleted from a store that is down: both wait for the reaper.
    assert len(orphans.waiting(services(app).redis)) == 2


def stored_image(app, storage="s3"):
    """A succeeded row that says its file is in `storage` (no bytes need to exist for these checks)."""
    batch_id, (gid,) = make_batch(app, "a fox", enqueue=False)
    advance(app, gid, Status.SUCCEEDED, file_name="ab/abcdef.png", thumb_name="cd/cdef.webp",
            mime_type="image/png", storage=storage)
    return batch_id, gid


@pytest.mark.parametrize("serve", ["proxy", "redirect"])
def test_pages_that_cannot_read_a_file_answer_a_clear_503(make_app, dead_store_settings, serve):
    app = make_app(**dead_store_settings, S3_SERVE=serve)
    batch_id, gid = stored_image(app)
    client = app.test_client()
    urls = [f"/images/{gid}/thumb", f"/generate/{batch_id}/images.zip"]
    if serve == "proxy":
        urls.append(f"/images/{gid}/file")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 503, url
        page = response.get_data(as_text=True)
        assert UNREACHABLE in page and "Traceback" not in page and "127.0.0.1" not in page
    assert client.get(f"/images/{gid}").status_code == 200  # the page itself needs no store
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["media"] == "unreachable"


def test_a_row_in_s3_on_an_install_without_a_bucket_is_a_503_not_a_500(make_app):
    app = make_app()
    _, gid = stored_image(app)
    response = app.test_client().get(f"/images/{gid}/thumb")
    assert response.status_code == 503 and UNREACHABLE in response.get_data(as_text=True)


def test_the_store_stopped_mid_batch_fails_the_rest_and_leaves_nothing_half_written(make_app, seaweed, tmp_path,
                                                                                   monkeypatch):
    server = SeaweedFS(tmp_path / "seaweed")
    server.start()
    try:
        app = make_app(**s3_settings(server), MEDIA_STORE_ATTEMPTS=3)
        prefix = app.config["S3_PREFIX"]
        real_put, puts = S3Store.put, []

        def put_then_stop(self, name, data, content_type):
            real_put(self, name, data, content_type)
            puts.append(name)
            if len(puts) == 5:  # the third image's file is in; the store goes down before its thumbnail
                server.stop()

        monkeypatch.setattr(S3Store, "put", put_then_stop)
        _, ids = make_batch(app, *(f"prompt {i}" for i in range(5)))
        drain(app)
        generations = rows(app, ids)
        assert [g.status for g in generations] == ["succeeded"] * 2 + ["failed"] * 3
        assert {g.error for g in generations[2:]} == {STORE_FAILED}
        assert all(g.file_name is None for g in generations[2:])
        assert len(orphans.waiting(services(app).redis)) == 6  # the third image's file among them

        server.start()  # back, on the same data
        kept = sorted(prefix + name for g in generations[:2] for name in (g.file_name, g.thumb_name))
        assert len(server.keys(prefix)) == 5  # the half-written image's file is still there
        # The reaper deletes them once the store answers again (a just-restarted one may refuse for a moment).
        deleted, deadline = 0, time.monotonic() + 60
        while deleted < 6 and time.monotonic() < deadline:
            with app.app_context():
                deleted += sweep(app, force=True).orphans_deleted
            time.sleep(0.2)
        assert deleted == 6
        assert server.keys(prefix) == kept
        assert orphans.waiting(services(app).redis) == set()
    finally:
        server.stop()
