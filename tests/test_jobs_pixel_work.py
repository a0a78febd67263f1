"""A process decodes and thumbnails at most one image per core at a time, however many jobs are in flight."""

import io
import threading
import time

import pytest
from PIL import Image

from app.imaging.errors import NOT_AN_IMAGE, ImageError
from app.worker import jobs


def png(size=(512, 512)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_burst_of_answers_is_decoded_no_more_than_one_per_core_at_a_time(monkeypatch):
    limit = 2
    monkeypatch.setattr(jobs, "PIXEL_WORK", threading.BoundedSemaphore(limit))
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
    monkeypatch.setattr(jobs, "PIXEL_WORK", threading.BoundedSemaphore(1))
    with pytest.raises(ImageError) as caught:
        jobs._checked_thumbnail(b"not an image")
    assert caught.value.reason == NOT_AN_IMAGE
    info, _thumbnail = jobs._checked_thumbnail(png((64, 64)))  # would block forever had the turn been kept
    assert info.width == 64
