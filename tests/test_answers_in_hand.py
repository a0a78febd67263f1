"""A worker process reads only a few answers at a time; the rest wait unread in their sockets, then arrive whole."""

import socket
import threading

import pytest
from conftest import API_KEY, drain
from factories import make_batch
from tests_support import rows

from app.imaging.decoding import decode_image
from app.providers.base import GenerationError, GenerationRequest
from app.providers.stability import BROKE_OFF, StabilityClient
from app.worker import jobs, slots


class CountingSlot(slots.AnswerSlot):
    """An AnswerSlot that records how many jobs hold one at once."""

    lock = threading.Lock()
    held_now = 0
    most = 0

    def take(self) -> None:
        """Count the place once it is held."""
        was_held = self.held
        super().take()
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


def test_the_body_stays_in_its_socket_until_read_and_the_connection_is_used_again(fake):
    client = StabilityClient(API_KEY, fake.base_url, pool_size=2)
    first = client.generate(GenerationRequest(prompt="a lighthouse"))
    assert first.content is None and first.body is not None  # headers only, so far
    assert decode_image(first.read()).info.mime_type == "image/png"
    second = client.generate(GenerationRequest(prompt="a harbour"))
    assert second.read() != first.data
    pools = client.session.get_adapter(fake.base_url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]  # the read body gave its connection back


@pytest.fixture
def cut_short_server():
    """A server that promises a 1,000-byte PNG and closes after ten bytes of it."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 1000\r\n"
                                   b"x-request-id: cut-1\r\n\r\n" + b"\x89PNG\r\n\x1a\n..")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_an_answer_that_breaks_off_is_a_transient_failure_with_its_request_id(cut_short_server):
    image = StabilityClient(API_KEY, cut_short_server).generate(GenerationRequest(prompt="p"))
    with pytest.raises(GenerationError) as caught:
        image.read()
    assert (caught.value.reason, caught.value.transient, caught.value.request_id) == (BROKE_OFF, True, "cut-1")


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
