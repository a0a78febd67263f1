"""Defects found while using the app, each pinned: balance without Redis, truncated images, lockout errors,
and the local secret key read while another process writes it."""

import io
import multiprocessing
import pathlib

import pytest
from PIL import Image
from redis.exceptions import ConnectionError as RedisConnectionError

from app.config import local_secret_key
from app.imaging.decoding import decode_image
from app.imaging.errors import NOT_AN_IMAGE, ImageError
from app.providers.base import GenerationError, GenerationRequest
from app.providers.stability import StabilityClient

KEY, BASE = "sk-test", "https://api.example.test"


def png(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_balance_fragment_answers_without_redis_instead_of_500(make_app):
    app = make_app(STABILITY_API_KEY="sk-some-key", REDIS_URL=None)
    response = app.test_client().get("/balance")
    assert response.status_code == 200


def test_a_truncated_image_is_reported_as_not_a_valid_image():
    whole = png((512, 512))
    with pytest.raises(ImageError) as caught:
        decode_image(whole[: len(whole) // 2])
    assert caught.value.reason == NOT_AN_IMAGE


def test_a_truncated_answer_ends_its_card_as_not_a_valid_image(api_app, fake, monkeypatch):
    from conftest import drain

    from app.accounts.users import local_user
    from app.extensions import db
    from app.generations.lifecycle import create_batch
    from app.models import Generation

    monkeypatch.setattr("app.worker.jobs.decode_image",
                        lambda data, **kwargs: decode_image(data[: len(data) // 2], **kwargs))
    with api_app.test_request_context():
        gid = create_batch(local_user(), ["a harbour"]).generations[0].id
    drain(api_app)
    with api_app.app_context():
        generation = db.session.get(Generation, gid)
        assert (generation.status, generation.error) == ("failed", NOT_AN_IMAGE)
    assert not [p for p in pathlib.Path(api_app.config["MEDIA_ROOT"]).rglob("*") if p.is_file()]


class LockoutFails:
    """A limiter whose Redis goes away exactly when the lockout is to be written."""

    def acquire(self, timeout=None):
        return 0.0

    def lock_out(self, seconds=None):
        raise RedisConnectionError("Redis went away")


def test_a_redis_error_while_recording_a_429_lockout_is_still_a_retryable_429(requests_mock):
    requests_mock.post(BASE + "/v2beta/stable-image/generate/core", status_code=429,
                       json={"id": "x", "name": "rate_limit_exceeded", "errors": ["slow down"]})
    with pytest.raises(GenerationError) as caught:
        StabilityClient(KEY, BASE, limiter=LockoutFails()).generate(GenerationRequest(prompt="p"))
    assert caught.value.transient and caught.value.status_code == 429


def _read_key(folder: str, start, results) -> None:  # noqa: ANN001
    start.wait()
    results.put(local_secret_key(folder))


@pytest.mark.parametrize("round_", range(5))
def test_processes_starting_together_all_read_the_same_whole_secret_key(tmp_path, round_):
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_read_key, args=(str(tmp_path), start, results)) for _ in range(8)]
    for process in processes:
        process.start()
    start.set()
    keys = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(30)
    assert len(set(keys)) == 1 and len(keys[0]) == 64
