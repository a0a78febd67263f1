"""The Stability client against the documented contract, with requests-mock; and how it reads an answer's body
off its socket, against the fake server."""

import base64
import io
import socket
import threading

import pytest
import requests
from conftest import API_KEY
from PIL import Image
from redis.exceptions import ConnectionError as RedisConnectionError

from app.imaging.decoding import decode_image
from app.providers.base import GenerationError, GenerationRequest
from app.providers.options import GenerationOptions
from app.providers.rate_limit import RateLimitTimeout
from app.providers.stability import BROKE_OFF, StabilityClient, endpoint_for

BASE = "https://api.example.test"
CORE = BASE + "/v2beta/stable-image/generate/core"
KEY = "sk-test-secret-key"


def png_bytes(size=(8, 8)) -> bytes:
    """A small valid PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def error_body(name: str, *messages: str) -> dict:
    return {"id": "a" * 32, "name": name, "errors": list(messages)}


@pytest.fixture
def client():
    return StabilityClient(KEY, BASE)


def test_success_as_image_bytes_reads_seed_finish_reason_and_request_id(client, requests_mock):
    data = png_bytes()
    requests_mock.post(CORE, content=data, headers={
        "content-type": "image/png", "finish-reason": "SUCCESS", "seed": "343940597", "x-request-id": "req-1"})
    image = client.generate(GenerationRequest(prompt="a lighthouse"))
    assert (image.read(), image.mime_type, image.seed, image.finish_reason, image.request_id) == (
        data, "image/png", 343940597, "SUCCESS", "req-1")
    assert not image.is_filtered


def test_request_is_multipart_with_bearer_key_accept_and_client_headers(client, requests_mock):
    requests_mock.post(CORE, content=png_bytes(), headers={"content-type": "image/png", "finish-reason": "SUCCESS"})
    options = GenerationOptions(aspect_ratio="16:9", output_format="webp", seed=42)
    client.generate(GenerationRequest(prompt="a lighthouse", options=options))
    sent = requests_mock.last_request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "image/*"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["stability-client-id"] == "image-generator"
    assert sent.headers["stability-client-version"]
    body = sent.body.decode()
    for name, value in [("prompt", "a lighthouse"), ("aspect_ratio", "16:9"), ("output_format", "webp"),
                        ("seed", "42")]:
        assert f'name="{name}"\r\n\r\n{value}\r\n' in body
    assert 'name="model"' not in body


def test_zero_seed_is_left_out_so_the_api_picks_one(client, requests_mock):
    requests_mock.post(CORE, content=png_bytes(), headers={"content-type": "image/png"})
    client.generate(GenerationRequest(prompt="p"))
    assert 'name="seed"' not in requests_mock.last_request.body.decode()


def test_timeouts_are_sent_with_every_request(client, requests_mock):
    requests_mock.post(CORE, content=png_bytes(), headers={"content-type": "image/png"})
    client.generate(GenerationRequest(prompt="p"))
    assert requests_mock.last_request.timeout == (5.0, 120.0)


def test_sd35_models_use_the_sd3_path_and_the_model_field(requests_mock):
    assert endpoint_for("sd3.5-large-turbo") == "/v2beta/stable-image/generate/sd3"
    assert endpoint_for("ultra") == "/v2beta/stable-image/generate/ultra"
    with pytest.raises(ValueError):
        endpoint_for("sd3.5-huge")
    requests_mock.post(BASE + "/v2beta/stable-image/generate/sd3", content=png_bytes(),
                       headers={"content-type": "image/png"})
    StabilityClient(KEY, BASE).generate(GenerationRequest(prompt="p", options=GenerationOptions(model="sd3.5-medium")))
    assert 'name="model"\r\n\r\nsd3.5-medium\r\n' in requests_mock.last_request.body.decode()


def test_json_mode_decodes_base64_and_reads_finish_reason_from_the_body(requests_mock):
    data = png_bytes()
    requests_mock.post(CORE, json={"image": base64.b64encode(data).decode(), "finish_reason": "SUCCESS",
                                   "seed": 7}, headers={"content-type": "application/json; type=image/png"})
    image = StabilityClient(KEY, BASE, accept="application/json").generate(GenerationRequest(prompt="p"))
    assert requests_mock.last_request.headers["accept"] == "application/json"
    assert (image.read(), image.mime_type, image.seed, image.finish_reason) == (data, "image/png", 7, "SUCCESS")


def test_json_mode_content_filtered_is_not_a_success(requests_mock):
    requests_mock.post(CORE, json={"image": base64.b64encode(png_bytes()).decode(),
                                   "finish_reason": "CONTENT_FILTERED", "seed": 1},
                       headers={"content-type": "application/json; type=image/jpeg"})
    image = StabilityClient(KEY, BASE, accept="application/json").generate(GenerationRequest(prompt="p"))
    assert image.is_filtered and image.mime_type == "image/jpeg"


def test_content_filtered_header_marks_the_image_filtered(client, requests_mock):
    requests_mock.post(CORE, content=png_bytes(), headers={"content-type": "image/png",
                                                           "finish-reason": "CONTENT_FILTERED", "seed": "5"})
    assert client.generate(GenerationRequest(prompt="p")).is_filtered


def test_json_mode_with_broken_base64_is_reported_as_not_an_image(requests_mock):
    requests_mock.post(CORE, json={"image": "%%%not base64", "finish_reason": "SUCCESS"},
                       headers={"content-type": "application/json; type=image/png"})
    with pytest.raises(GenerationError, match="not a valid image"):
        StabilityClient(KEY, BASE, accept="application/json").generate(GenerationRequest(prompt="p"))


@pytest.mark.parametrize(("status", "body", "reason", "transient"), [
    (400, error_body("bad_request", "aspect_ratio: must be one of 16:9, 1:1"),
     "The API rejected the request: aspect_ratio: must be one of 16:9, 1:1", False),
    (401, error_body("unauthorized", "authorization: invalid or missing header value"),
     "Invalid API key: the operator must fix the server's STABILITY_API_KEY", False),
    (402, error_body("payment_required", "You lack sufficient credits to make this request."),
     "Out of credits: the Stability account needs a top-up", False),
    (403, error_body("content_moderation", "Your request was flagged by our content moderation system"),
     "Blocked by content moderation (not charged)", False),
    (404, error_body("not_found", "Not found"), "The API does not know this endpoint or model", False),
    (413, error_body("payload_too_large", "body too large"), "The request was too large for the API", False),
    (422, error_body("invalid_language", "English is the only supported language for this service."),
     "The API refused the prompt: English is the only supported language for this service.", False),
    (429, {"id": "rate_limit_exceeded", "name": "rate_limit_exceeded", "errors": ["Too many requests"]},
     "Rate limited by the API; try again in a minute", True),
    (500, error_body("internal_error", "An unexpected server error has occurred, please try again later."),
     "Stability AI had a server error (500); try again later", True),
    (503, {}, "Stability AI had a server error (503); try again later", True),
])
def test_each_error_status_becomes_a_readable_reason_keeping_the_error_id(
        client, requests_mock, status, body, reason, transient):
    requests_mock.post(CORE, status_code=status, json=body, headers={"x-request-id": "req-9"})
    with pytest.raises(GenerationError) as caught:
        client.generate(GenerationRequest(prompt="p"))
    error = caught.value
    assert (error.reason, error.transient, error.status_code) == (reason, transient, status)
    assert error.error_id == body.get("id")
    assert error.request_id == "req-9"


def test_an_error_body_that_is_not_json_still_gives_a_reason(client, requests_mock):
    requests_mock.post(CORE, status_code=502, text="<html>Bad gateway</html>")
    with pytest.raises(GenerationError, match=r"server error \(502\)") as caught:
        client.generate(GenerationRequest(prompt="p"))
    assert caught.value.transient


def test_v1_error_shape_with_a_single_message_is_understood(client, requests_mock):
    requests_mock.post(CORE, status_code=400, json={"id": "b" * 32, "name": "bad_request", "message": "bad seed"})
    with pytest.raises(GenerationError, match="The API rejected the request: bad seed"):
        client.generate(GenerationRequest(prompt="p"))


@pytest.mark.parametrize(("exception", "reason"), [
    (requests.exceptions.ConnectTimeout, "did not answer in time"),
    (requests.exceptions.ReadTimeout, "did not answer in time"),
    (requests.exceptions.ConnectionError, "Could not reach the Stability API"),
])
def test_timeouts_and_connection_errors_are_transient_failures(client, requests_mock, exception, reason):
    requests_mock.post(CORE, exc=exception)
    with pytest.raises(GenerationError, match=reason) as caught:
        client.generate(GenerationRequest(prompt="p"))
    assert caught.value.transient


def test_the_key_never_appears_in_repr_or_error_reasons(client, requests_mock):
    requests_mock.post(CORE, status_code=401, json=error_body("unauthorized", f"bad key {KEY}"))
    assert KEY not in repr(client)
    with pytest.raises(GenerationError) as caught:
        client.generate(GenerationRequest(prompt="p"))
    assert KEY not in caught.value.reason


def test_log_lines_carry_the_request_id_and_never_the_key(client, requests_mock, caplog):
    requests_mock.post(CORE, content=png_bytes(), headers={"content-type": "image/png", "x-request-id": "req-77"})
    with caplog.at_level("DEBUG"):
        client.generate(GenerationRequest(prompt="p"))
    assert "req-77" in caplog.text
    assert KEY not in caplog.text


class FakeLimiter:
    """Records how the client uses its limiter; can refuse like a real one."""

    def __init__(self, error=None, lockout_error=None):
        self.acquired, self.lockouts, self.error, self.lockout_error = [], [], error, lockout_error

    def acquire(self, timeout=None):
        if self.error:
            raise self.error
        self.acquired.append(timeout)
        return 0.0

    def lock_out(self, seconds=None):
        if self.lockout_error:
            raise self.lockout_error
        self.lockouts.append(seconds)


def test_every_call_takes_a_rate_limit_slot_and_a_429_locks_everyone_out(requests_mock):
    limiter = FakeLimiter()
    client = StabilityClient(KEY, BASE, limiter=limiter)
    requests_mock.post(CORE, [{"status_code": 429, "json": {"id": "rate_limit_exceeded"}},
                              {"content": png_bytes(), "headers": {"content-type": "image/png"}}])
    with pytest.raises(GenerationError):
        client.generate(GenerationRequest(prompt="p"))
    client.generate(GenerationRequest(prompt="p"))
    assert len(limiter.acquired) == 2 and limiter.lockouts == [None]


def test_a_redis_error_while_recording_a_429_lockout_is_still_a_retryable_429(requests_mock):
    requests_mock.post(CORE, status_code=429, json={"id": "x", "name": "rate_limit_exceeded", "errors": ["slow down"]})
    limiter = FakeLimiter(lockout_error=RedisConnectionError("Redis went away"))
    with pytest.raises(GenerationError) as caught:
        StabilityClient(KEY, BASE, limiter=limiter).generate(GenerationRequest(prompt="p"))
    assert caught.value.transient and caught.value.status_code == 429


@pytest.mark.parametrize(("error", "reason"), [
    (RateLimitTimeout(), "Waited too long for the API's rate limit"),
    (RedisConnectionError(), r"The rate limiter \(Redis\) is unavailable"),
])
def test_a_limiter_that_cannot_grant_a_slot_is_a_transient_failure_and_nothing_is_sent(requests_mock, error, reason):
    requests_mock.post(CORE, content=png_bytes())
    with pytest.raises(GenerationError, match=reason) as caught:
        StabilityClient(KEY, BASE, limiter=FakeLimiter(error)).generate(GenerationRequest(prompt="p"))
    assert caught.value.transient and not requests_mock.called


def test_balance_is_read_from_v1_user_balance(requests_mock):
    requests_mock.get(BASE + "/v1/user/balance", json={"credits": 0.0790329})
    assert StabilityClient(KEY, BASE).balance() == pytest.approx(0.0790329)
    assert requests_mock.last_request.headers["authorization"] == f"Bearer {KEY}"


def test_a_v1_balance_error_becomes_a_reason(requests_mock):
    requests_mock.get(BASE + "/v1/user/balance", status_code=401,
                      json={"id": "c" * 32, "name": "unauthorized", "message": "bad key"})
    with pytest.raises(GenerationError, match="Invalid API key"):
        StabilityClient(KEY, BASE).balance()


# --- the answer's body, read off its socket (the fake server) ----------------------------------

def test_the_body_stays_in_its_socket_until_read_and_the_connection_is_used_again(fake):
    client = StabilityClient(API_KEY, fake.base_url, pool_size=2)
    first = client.generate(GenerationRequest(prompt="a lighthouse"))
    assert first.content is None and first.body is not None  # headers only, so far
    assert decode_image(first.read()).info.mime_type == "image/png"
    second = client.generate(GenerationRequest(prompt="a harbour"))
    assert second.read() != first.read()
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
