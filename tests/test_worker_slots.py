"""How much of a burst of answers one worker process holds and works on at once (app/worker/slots.py): decoding
and thumbnailing one image per core, two answers in hand per core, the rest waiting unread in their sockets,
and every place given back."""

import io
import threading
import time

import pytest
from conftest import API_KEY, drain
from factories import make_batch
from PIL import Image
from tests_support import rows

from app.imaging.errors import NOT_AN_IMAGE, ImageError
from app.providers.base import GenerationError
from app.providers.stability import BROKE_OFF
from app.worker import jobs, slots


def png(size=(512, 512)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


class CountingSlot(slots.AnswerSlot):
    """An AnswerSlot that records how many jobs hold one at once."""

    lock = threading.Lock()
    held_now = 0
    most = 0

    def take(self, size: int = 0) -> None:
        """Count the place once it is held."""
        was_held = self.held
        super().take(size)
        if not was_held:
            with CountingSlot.lock:
                CountingSlot.held_now += 1
                CountingSlot.most = max(CountingSlot.most, CountingSlot.held_now)

    def give_back(self) -> None:
        """Count the place as free."""
        if self.held:
            with CountingSlot.lock:
                CountingSlot.held_now -= 1
        super().give_back()


def test_a_burst_of_answers_is_decoded_no_more_than_one_per_core_at_a_time(monkeypatch):
    limit = 2
    monkeypatch.setattr(slots, "PIXEL_WORK", threading.BoundedSemaphore(limit))
    real_decode, busy, most, lock = jobs.decode_image, [0], [0], threading.Lock()

    def counting_decode(data, **kwargs):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.02)  # long enough for every thread to be waiting at once
        try:
            return real_decode(data, **kwargs)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(jobs, "decode_image", counting_decode)
    data, results = png(), []
    threads = [threading.Thread(target=lambda: results.append(jobs._checked_thumbnail(data))) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == limit
    assert len(results) == 12
    assert all((info.width, thumbnail.width) == (512, 384) for info, thumbnail in results)


def test_a_bad_answer_gives_its_turn_back(monkeypatch):
    monkeypatch.setattr(slots, "PIXEL_WORK", threading.BoundedSemaphore(1))
    with pytest.raises(ImageError) as caught:
        jobs._checked_thumbnail(b"not an image")
    assert caught.value.reason == NOT_AN_IMAGE
    info, _thumbnail = jobs._checked_thumbnail(png((64, 64)))  # would block forever had the turn been kept
    assert info.width == 64


def test_a_burst_of_answers_is_read_a_few_at_a_time_and_every_image_is_stored(make_app, fake, monkeypatch):
    app = make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url, WORKER_CONCURRENCY=8)
    fake.hold_until, fake.latency = 8, 10.0  # all eight answers leave together
    monkeypatch.setattr(slots, "ANSWERS_IN_HAND", threading.BoundedSemaphore(2))
    monkeypatch.setattr(jobs, "AnswerSlot", CountingSlot)
    real_decode = jobs.decode_image

    def slow_decode(data: bytes, **kwargs):
        threading.Event().wait(0.05)  # long enough for the other answers to be waiting at once
        return real_decode(data, **kwargs)

    monkeypatch.setattr(jobs, "decode_image", slow_decode)
    CountingSlot.most = CountingSlot.held_now = 0
    _, ids = make_batch(app, *[f"a lighthouse, take {n}" for n in range(8)])
    drain(app, slots=8)
    assert [g.status for g in rows(app, ids)] == ["succeeded"] * 8
    assert CountingSlot.most == 2 and CountingSlot.held_now == 0
    assert fake.max_concurrency == 8  # all were in flight together, so the limit, not the queue, kept them apart


def test_a_broken_off_answer_is_retried_and_gives_its_place_back(api_app, monkeypatch):
    real_read, calls = jobs.GeneratedImage.read, []

    def breaks_once(image):
        calls.append(image.request_id)
        if len(calls) == 1:
            raise GenerationError(BROKE_OFF, transient=True)
        return real_read(image)

    monkeypatch.setattr(jobs.GeneratedImage, "read", breaks_once)
    monkeypatch.setitem(api_app.config, "STABILITY_RETRY_BASE_DELAY", 0.01)
    _, ids = make_batch(api_app, "a harbour")
    drain(api_app)
    (generation,) = rows(api_app, ids)
    assert (generation.status, generation.attempts) == ("succeeded", 2)
    assert len(calls) >= 2
    assert slots.ANSWERS_IN_HAND._value == 2 * slots.CORES  # every place given back
