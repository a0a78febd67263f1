"""Pin the behaviour of the fake Stability API used by the app's tests."""

from __future__ import annotations

import base64
import io
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fake_stability import FakeStability
from PIL import Image

KEY = "test-key"
CORE = "/v2beta/stable-image/generate/core"
ULTRA = "/v2beta/stable-image/generate/ultra"
SD3 = "/v2beta/stable-image/generate/sd3"
HEX32 = re.compile(r"[0-9a-f]{32}")
MODERATION = (
    "Your request was flagged by our content moderation system, as a result your "
    "request was denied and you were not charged."
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeStability]:
    """One fake for the module, with the rate limit off."""
    with FakeStability(api_key=KEY, rate_limit=None) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeStability) -> FakeStability:
    """The shared fake, reset before each test."""
    server.reset()
    server.latency = 0.0
    return server


def post(
    fake: FakeStability,
    path: str,
    accept: str = "image/*",
    key: str | None = KEY,
    timeout: float = 10,
    **fields: str,
) -> requests.Response:
    """POST a multipart generate request the way the contract describes."""
    headers = {"accept": accept}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    fields.setdefault("prompt", "a lighthouse at dusk")
    return requests.post(
        fake.base_url + path, headers=headers, data=fields, files={"none": ""}, timeout=timeout
    )


def assert_error(resp: requests.Response, status: int, name: str) -> dict:
    """Check the v2beta error shape and return the body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["name"] == name
    assert isinstance(body["errors"], list) and body["errors"]
    assert all(isinstance(m, str) for m in body["errors"])
    if status != 429:
        assert HEX32.fullmatch(body["id"])
    return body


@pytest.mark.parametrize(
    ("path", "fields", "fmt", "size"),
    [
        (CORE, {}, "png", (1536, 1536)),
        (CORE, {"aspect_ratio": "16:9", "output_format": "jpeg"}, "jpeg", (2016, 1152)),
        (CORE, {"aspect_ratio": "9:21", "output_format": "webp"}, "webp", (960, 2304)),
        (ULTRA, {"aspect_ratio": "21:9"}, "png", (1536, 640)),
        (ULTRA, {"aspect_ratio": "4:5", "output_format": "jpeg"}, "jpeg", (896, 1088)),
        (SD3, {}, "png", (1024, 1024)),
        (SD3, {"model": "sd3.5-flash", "aspect_ratio": "3:2"}, "png", (1216, 832)),
        (SD3, {"model": "sd3-medium", "aspect_ratio": "2:3"}, "webp", (832, 1216)),
        (SD3, {"model": "sd3.5-large-turbo", "cfg_scale": "1"}, "png", (1024, 1024)),
    ],
)
def test_success_raw_image(
    fake: FakeStability, path: str, fields: dict, fmt: str, size: tuple[int, int]
) -> None:
    """accept image/* returns raw bytes of the right format and pixel size."""
    if fmt != "png":
        fields = {**fields, "output_format": fmt}
    resp = post(fake, path, **fields)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == f"image/{fmt}"
    assert resp.headers["finish-reason"] == "SUCCESS"
    assert 1 <= int(resp.headers["seed"]) <= 4_294_967_294
    assert HEX32.fullmatch(resp.headers["x-request-id"])
    img = Image.open(io.BytesIO(resp.content))
    assert img.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
    assert img.size == size


def test_success_json_mode(fake: FakeStability) -> None:
    """accept application/json returns base64 JSON and no finish-reason header."""
    resp = post(fake, ULTRA, accept="application/json", aspect_ratio="16:9",
                output_format="webp", seed="42")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["content-type"] == "application/json; type=image/webp"
    assert "finish-reason" not in resp.headers
    body = resp.json()
    assert body["finish_reason"] == "SUCCESS"
    assert body["seed"] == 42
    img = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert (img.format, img.size) == ("WEBP", (1344, 768))


def test_default_accept_and_explicit_seed(fake: FakeStability) -> None:
    """requests' default accept */* gets raw bytes; a given seed is echoed."""
    resp = requests.post(
        fake.base_url + CORE,
        headers={"authorization": f"Bearer {KEY}"},
        data={"prompt": "x", "seed": "4294967294"},
        files={"none": ""},
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    assert resp.headers["seed"] == "4294967294"


def test_random_seed_when_zero(fake: FakeStability) -> None:
    """seed 0 or absent yields a random non-zero seed."""
    seeds = {post(fake, SD3, seed="0").headers["seed"] for _ in range(3)}
    assert all(1 <= int(s) <= 4_294_967_294 for s in seeds)
    assert len(seeds) > 1


@pytest.mark.parametrize("seed", ["4294967295", "-1", "1.5", "abc", ""])
def test_seed_out_of_bounds(fake: FakeStability, seed: str) -> None:
    """Seeds outside 0..4294967294 or not integers are 400."""
    body = assert_error(post(fake, CORE, seed=seed), 400, "bad_request")
    assert any(m.startswith("seed:") for m in body["errors"])


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_auth_failures(fake: FakeStability, key: str | None) -> None:
    """Missing or wrong bearer key is 401 unauthorized."""
    body = assert_error(post(fake, CORE, key=key), 401, "unauthorized")
    assert body["errors"] == ["authorization: invalid or missing header value"]


def test_auth_without_bearer_prefix(fake: FakeStability) -> None:
    """The bare key without 'Bearer ' is rejected (the original app's mistake)."""
    resp = requests.post(fake.base_url + CORE, headers={"authorization": KEY},
                         data={"prompt": "x"}, files={"none": ""}, timeout=10)
    assert_error(resp, 401, "unauthorized")


@pytest.mark.parametrize("kind", ["json", "form"])
def test_non_multipart_rejected(fake: FakeStability, kind: str) -> None:
    """JSON and url-encoded bodies get 400 content-type: must be multipart/form-data."""
    headers = {"authorization": f"Bearer {KEY}", "accept": "image/*"}
    if kind == "json":
        resp = requests.post(fake.base_url + CORE, headers=headers,
                             json={"prompt": "x"}, timeout=10)
    else:
        resp = requests.post(fake.base_url + CORE, headers=headers,
                             data={"prompt": "x"}, timeout=10)
    body = assert_error(resp, 400, "bad_request")
    assert body["errors"] == ["content-type: must be multipart/form-data"]


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        (CORE, {"prompt": ""}, "prompt"),
        (CORE, {"prompt": "x" * 10_001}, "prompt"),
        (CORE, {"negative_prompt": "x" * 10_001}, "negative_prompt"),
        (CORE, {"aspect_ratio": "4:3"}, "aspect_ratio"),
        (CORE, {"output_format": "gif"}, "output_format"),
        (CORE, {"style_preset": "watercolour"}, "style_preset"),
        (CORE, {"cfg_scale": "4"}, "cfg_scale"),
        (ULTRA, {"cfg_scale": "4"}, "cfg_scale"),
        (SD3, {"cfg_scale": "0.5"}, "cfg_scale"),
        (SD3, {"cfg_scale": "11"}, "cfg_scale"),
        (SD3, {"model": "sd3.5-huge"}, "model"),
    ],
)
def test_validation_errors(fake: FakeStability, path: str, fields: dict, field: str) -> None:
    """Each invalid field is a 400 whose message starts with the field name."""
    body = assert_error(post(fake, path, **fields), 400, "bad_request")
    assert any(m.startswith(f"{field}:") for m in body["errors"]), body


def test_missing_prompt_message(fake: FakeStability) -> None:
    """A request without prompt says exactly 'prompt: is required'."""
    resp = requests.post(fake.base_url + CORE, headers={"authorization": f"Bearer {KEY}"},
                         data={"aspect_ratio": "1:1"}, files={"none": ""}, timeout=10)
    assert assert_error(resp, 400, "bad_request")["errors"] == ["prompt: is required"]


def test_limits_accepted(fake: FakeStability) -> None:
    """10,000-char prompts, every style preset and model on core are fine."""
    assert post(fake, CORE, prompt="x" * 10_000, negative_prompt="y" * 10_000).status_code == 200
    assert post(fake, CORE, style_preset="pixel-art", model="whatever").status_code == 200
    assert post(fake, SD3, cfg_scale="10", model="sd3.5-medium").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v2beta/stable-image/generate/sd3.5-large",
        "/v2beta/stable-image/generate/sd3.5-large-turbo",
        "/v2beta/stable-image/generate/sdxl",
        "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image",
    ],
)
def test_unknown_paths_404(fake: FakeStability, path: str) -> None:
    """Paths that do not exist, including sd3.5-* in the URL, are 404."""
    resp = post(fake, path)
    assert resp.status_code == 404
    assert resp.json()["name"] == "not_found"


def test_payload_too_large(fake: FakeStability) -> None:
    """A body over 10 MiB is 413 payload_too_large."""
    resp = requests.post(
        fake.base_url + CORE,
        headers={"authorization": f"Bearer {KEY}"},
        data={"prompt": "x"},
        files={"image": ("big.bin", b"\0" * (10 * 1024 * 1024 + 1))},
        timeout=30,
    )
    assert_error(resp, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("marker", "status", "name", "message"),
    [
        ("[moderate]", 403, "content_moderation", MODERATION),
        ("[nocredits]", 402, "payment_required", None),
        ("[e422]", 422, None, "English is the only supported language for this service."),
        ("[e500]", 500, "internal_error",
         "An unexpected server error has occurred, please try again later."),
        ("[e503]", 503, None, None),
    ],
)
def test_error_markers(
    fake: FakeStability, marker: str, status: int, name: str | None, message: str | None
) -> None:
    """Markers in the prompt trigger the documented error answers, every time."""
    for accept in ("image/*", "application/json"):
        resp = post(fake, CORE, accept=accept, prompt=f"a cat {marker}")
        assert resp.status_code == status
        body = resp.json()
        assert HEX32.fullmatch(body["id"])
        if name:
            assert body["name"] == name
        if message:
            assert body["errors"] == [message]


def test_e500x2_marker(fake: FakeStability) -> None:
    """[e500x2] fails twice for the same prompt, then succeeds."""
    prompt = "a dog [e500x2]"
    codes = [post(fake, CORE, prompt=prompt).status_code for _ in range(4)]
    assert codes == [500, 500, 200, 200]
    assert post(fake, CORE, prompt=prompt + " again").status_code == 500


def test_filter_marker(fake: FakeStability) -> None:
    """[filter] is still 200 with an image, but finish reason CONTENT_FILTERED."""
    resp = post(fake, ULTRA, prompt="x [filter]")
    assert resp.status_code == 200
    assert resp.headers["finish-reason"] == "CONTENT_FILTERED"
    assert Image.open(io.BytesIO(resp.content)).size == (1024, 1024)
    body = post(fake, ULTRA, accept="application/json", prompt="x [filter]").json()
    assert body["finish_reason"] == "CONTENT_FILTERED"
    Image.open(io.BytesIO(base64.b64decode(body["image"])))


def test_garbage_marker(fake: FakeStability) -> None:
    """[garbage] claims image/png but the body is not an image."""
    resp = post(fake, CORE, prompt="x [garbage]")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(resp.content))


def test_latency_and_slow_marker(fake: FakeStability) -> None:
    """latency delays each generate; [slow] adds 3 s on top."""
    fake.latency = 0.3
    start = time.monotonic()
    assert post(fake, CORE).status_code == 200
    assert 0.3 <= time.monotonic() - start < 2.5
    fake.latency = 0.0
    start = time.monotonic()
    assert post(fake, CORE, prompt="x [slow]").status_code == 200
    assert 3.0 <= time.monotonic() - start < 6.0


def test_hang_marker_never_answers_until_the_fake_stops() -> None:
    """[hang] holds the request open past any read timeout; in_flight counts it; stop() releases it."""
    with FakeStability(api_key=KEY, rate_limit=None) as hung:
        with pytest.raises(requests.ReadTimeout):
            post(hung, CORE, prompt="x [hang]", timeout=0.5)
        assert hung.in_flight == 1
        started = time.monotonic()
    assert time.monotonic() - started < 5.0


def test_script_forced_answers(fake: FakeStability) -> None:
    """script() queues forced answers for the next valid generate requests."""
    fake.script(429, times=2)
    fake.script(200, b"not an image", headers={"content-type": "image/png"})
    assert post(fake, CORE, prompt="").status_code == 400
    assert [post(fake, CORE).status_code for _ in range(2)] == [429, 429]
    forced = post(fake, CORE)
    assert (forced.status_code, forced.content) == (200, b"not an image")
    assert post(fake, CORE).status_code == 200
    assert fake.count_429 == 2


def test_recording(fake: FakeStability) -> None:
    """Requests are recorded with path, lowercase headers, form fields and status."""
    post(fake, SD3, prompt="p", model="sd3.5-medium")
    post(fake, CORE, key="bad")
    rec = fake.requests
    assert [r.status for r in rec] == [200, 401]
    assert rec[0].path == SD3
    assert rec[0].form == {"prompt": "p", "model": "sd3.5-medium"}
    assert rec[0].headers["authorization"] == f"Bearer {KEY}"
    assert rec[0].headers["content-type"].startswith("multipart/form-data")
    assert rec[0].arrived_at <= rec[1].arrived_at
    assert rec[0].is_generate
    fake.reset()
    assert fake.requests == [] and fake.count_429 == 0


def test_max_concurrency(fake: FakeStability) -> None:
    """max_concurrency reports overlapping generate requests."""
    fake.latency = 0.5
    threads = [threading.Thread(target=post, args=(fake, CORE)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.max_concurrency == 4
    assert [r.status for r in fake.requests] == [200] * 4


def test_balance(fake: FakeStability) -> None:
    """GET /v1/user/balance gives a float; bad auth gets the v1 error shape."""
    url = fake.base_url + "/v1/user/balance"
    resp = requests.get(url, headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert resp.status_code == 200
    before = resp.json()["credits"]
    assert isinstance(before, float)
    post(fake, CORE)
    after = requests.get(url, headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert after.json()["credits"] == pytest.approx(before - 3)
    bad = requests.get(url, headers={"authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401
    assert set(bad.json()) == {"id", "name", "message"}


def test_out_of_credits() -> None:
    """When the balance is below the price, the answer is 402."""
    with FakeStability(credits=5.0, rate_limit=None) as fake:
        assert post(fake, CORE).status_code == 200
        assert_error(post(fake, CORE), 402, "payment_required")
        assert post(fake, SD3, model="sd3.5-flash").status_code == 402


def test_rate_limit_and_lockout() -> None:
    """Over N requests in the window is 429, then every request during the lockout."""
    with FakeStability(rate_limit=(5, 1.0), lockout=0.5) as fake:
        codes = [post(fake, CORE).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        body = assert_error(post(fake, CORE), 429, "rate_limit_exceeded")
        assert body["id"] == "rate_limit_exceeded"
        assert fake.locked_out
        assert post(fake, SD3, prompt="").status_code == 429  # even invalid ones
        assert fake.count_429 == 3
        time.sleep(0.6)
        assert not fake.locked_out
        assert [post(fake, CORE).status_code for _ in range(5)] == [200] * 5
        assert post(fake, CORE).status_code == 429
        assert fake.count_429 == 4


def test_rate_limit_sliding_window() -> None:
    """Requests spaced out so no window holds more than N are all served."""
    with FakeStability(rate_limit=(3, 0.4), lockout=5.0) as fake:
        for _ in range(3):
            assert [post(fake, CORE).status_code for _ in range(3)] == [200] * 3
            time.sleep(0.45)
        assert fake.count_429 == 0


def test_rate_limit_counts_concurrent_arrivals() -> None:
    """Arrivals are counted before the latency sleep, across threads."""
    with FakeStability(rate_limit=(5, 10.0), lockout=10.0, latency=0.3) as fake:
        codes: list[int] = []
        lock = threading.Lock()

        def one() -> None:
            """Send one request and keep its status."""
            status = post(fake, CORE).status_code
            with lock:
                codes.append(status)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [200] * 5 + [429] * 3


@pytest.mark.processes
def test_cli_prints_base_url() -> None:
    """`python tests/fake_stability.py --port N` serves, prints its URL, stops on Ctrl-C."""
    script = Path(__file__).with_name("fake_stability.py")
    cmd = [sys.executable, str(script), "--port", "0", "--api-key", "demo-key"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert match, line
            resp = requests.post(match.group(0) + CORE,
                                 headers={"authorization": "Bearer demo-key"},
                                 data={"prompt": "x"}, files={"none": ""}, timeout=10)
            assert resp.status_code == 200
        finally:
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "stopped after 1 requests" in rest
