"""Test-only fake of Stability AI's REST API, served over real HTTP on loopback.

It follows /work/shared/stability-api.md: the v2beta generate endpoints
(``/v2beta/stable-image/generate/core``, ``/ultra``, ``/sd3``), their multipart
form fields, validation errors, pixel sizes, both ``accept`` modes, the
10 MiB request limit, the sliding-window rate limit with its lockout, and the
v1 ``/v1/user/balance`` and ``/v1/user/account`` endpoints.

Use it from tests::

    from fake_stability import FakeStability

    with FakeStability(latency=0.1) as fake:
        client_base_url = fake.base_url   # e.g. "http://127.0.0.1:54321"
        ...
        assert fake.requests[-1].status == 200

or by hand (prints the base URL, serves until Ctrl-C)::

    python tests/fake_stability.py --port 8765 --latency 1 --api-key demo-key

Scripted behaviours, triggered by text anywhere in the ``prompt`` field of an
otherwise valid generate request (checked in this order; the first that
applies answers)::

    [moderate]   403 content_moderation (not charged)
    [nocredits]  402 payment_required
    [e422]       422 "English is the only supported language for this service."
    [e500x2]     500 internal_error for the first two requests carrying that
                 exact prompt, then handled normally
    [e500]       500 internal_error, every time
    [e503]       503 service_unavailable, every time
    [garbage]    200 with content-type image/png but a body that is not an image
                 (with accept: application/json, "image" decodes to non-image bytes)
    [filter]     200 with finish reason CONTENT_FILTERED (a blurred-looking image)
    [slow]       sleeps 3 s more than ``latency`` before answering (combinable)
    [hang]       never answers (until the fake stops): a client's read timeout must end it

Tests can also queue forced answers with ``fake.script(status, body, times=n)``:
the next ``n`` valid generate requests get that answer instead of the normal one.

Order of checks for a generate request: lockout, rate limit (the request is
counted when it arrives), body size (413), authorization (401), content type
(400), field validation (400, all field errors together), then the ``latency``
sleep, scripted answers, prompt markers, credits (402) and finally the image.
The rate limit and lockout cover the generate endpoints only, and treat the
whole server as one account. Requests refused during a lockout are not counted,
and the window starts empty when a lockout ends.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import io
import json
import math
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Self

from PIL import Image, ImageDraw
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

GENERATE_PREFIX = "/v2beta/stable-image/generate/"
STABLE_IMAGE_PREFIX = "/v2beta/stable-image/"
RESULTS_PREFIX = "/v2beta/results/"
ENDPOINTS = ("core", "ultra", "sd3")
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_PROMPT_CHARS = 10_000
MAX_SEED = 4_294_967_294
MAX_CLIENT_HEADER_CHARS = 256
CLIENT_HEADERS = ("stability-client-id", "stability-client-user-id", "stability-client-version")
SLOW_EXTRA_SECONDS = 3.0
# Longer than any client's read timeout; stop() wakes a hung request early.
HANG_SECONDS = 3600.0

ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art",
    "enhance", "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound",
    "neon-punk", "origami", "photographic", "pixel-art", "tile-texture",
)
SD3_MODELS = {
    "sd3.5-large": "sd3.5-large",
    "sd3.5-large-turbo": "sd3.5-large-turbo",
    "sd3.5-medium": "sd3.5-medium",
    "sd3.5-flash": "sd3.5-flash",
    "sd3-large": "sd3.5-large",
    "sd3-large-turbo": "sd3.5-large-turbo",
    "sd3-medium": "sd3.5-medium",
}
CREDITS_PER_IMAGE = {
    "core": 3.0,
    "ultra": 8.0,
    "sd3.5-large": 6.5,
    "sd3.5-large-turbo": 4.0,
    "sd3.5-medium": 3.5,
    "sd3.5-flash": 2.5,
}
SIZES_1MP = {
    "1:1": (1024, 1024), "5:4": (1088, 896), "3:2": (1216, 832),
    "16:9": (1344, 768), "21:9": (1536, 640), "4:5": (896, 1088),
    "2:3": (832, 1216), "9:16": (768, 1344), "9:21": (640, 1536),
}
SIZES_CORE = {
    "1:1": (1536, 1536), "5:4": (1632, 1344), "3:2": (1824, 1248),
    "16:9": (2016, 1152), "21:9": (2304, 960), "4:5": (1344, 1632),
    "2:3": (1248, 1824), "9:16": (1152, 2016), "9:21": (960, 2304),
}

ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "content_moderation",
    404: "not_found",
    413: "payload_too_large",
    422: "invalid_language",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "service_unavailable",
}
MSG_UNAUTHORIZED = "authorization: invalid or missing header value"
MSG_NO_CREDITS = (
    "You lack sufficient credits to make this request. Please purchase more credits "
    "at https://platform.stability.ai/account/credits and try again."
)
MSG_MODERATION = (
    "Your request was flagged by our content moderation system, as a result your "
    "request was denied and you were not charged."
)
MSG_LANGUAGE = "English is the only supported language for this service."
MSG_INTERNAL = "An unexpected server error has occurred, please try again later."
MSG_UNAVAILABLE = "The service is temporarily unavailable, please try again later."
MSG_NOT_FOUND = "The requested resource was not found."
MSG_TOO_LARGE = "payload: must be no larger than 10 MiB"
MSG_MULTIPART = "content-type: must be multipart/form-data"
DEFAULT_MESSAGES = {
    400: "bad request",
    401: MSG_UNAUTHORIZED,
    402: MSG_NO_CREDITS,
    403: MSG_MODERATION,
    404: MSG_NOT_FOUND,
    413: MSG_TOO_LARGE,
    422: MSG_LANGUAGE,
    500: MSG_INTERNAL,
    503: MSG_UNAVAILABLE,
}
GARBAGE_BODY = b"<html><body>502 Bad Gateway: definitely not an image</body></html>\n"
SEED_RE = re.compile(r"[0-9]+")
CREATIVE_RESULT_PREFIX = "/v2beta/stable-image/upscale/creative/result/"
COMMON = ("seed", "output_format")
STYLED = ("style_preset", "negative_prompt")
UNIT = (0.0, 1.0)
LIGHT_DIRECTIONS = ("above", "below", "left", "right")


@dataclass(frozen=True)
class EditSpec:
    """What one endpoint that starts from an image takes (the contract's table), and what it answers with."""

    credits: float
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = COMMON
    numbers: tuple[tuple[str, tuple[float, float]], ...] = ()
    files: tuple[str, ...] = ("image",)  # required file parts (the first is the image the limits apply to)
    optional_files: tuple[str, ...] = ()
    min_side: int = 64
    max_side: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    aspect_rule: bool = False
    is_async: bool = False
    formats: tuple[str, ...] = OUTPUT_FORMATS
    output: str = "same"  # "same", "x4", "4mp", "1mp", "grow" (outpaint), "cutout" (transparent background)


EDIT_PIXELS = {"min_pixels": 4_096, "max_pixels": 9_437_184}
EDIT_ENDPOINTS: dict[str, EditSpec] = {
    "generate/ultra": EditSpec(8, ("prompt", "strength"), (*COMMON, *STYLED, "aspect_ratio"), (("strength", UNIT),),
                               max_side=16_384, min_pixels=4_096, output="1mp"),
    "generate/sd3": EditSpec(0, ("prompt", "strength", "mode"), (*COMMON, "negative_prompt", "model", "cfg_scale"),
                             (("strength", UNIT), ("cfg_scale", (1.0, 10.0))), output="1mp"),
    "edit/inpaint": EditSpec(5, ("prompt",), (*COMMON, *STYLED, "grow_mask"), (("grow_mask", (0, 100)),),
                             optional_files=("mask",), **EDIT_PIXELS),
    "edit/outpaint": EditSpec(4, (), (*COMMON, "style_preset", "prompt", "creativity", "left", "right", "up", "down"),
                              (("creativity", UNIT), *((side, (0, 2000)) for side in ("left", "right", "up", "down"))),
                              aspect_rule=True, output="grow", **EDIT_PIXELS),
    "edit/erase": EditSpec(5, (), (*COMMON, "grow_mask"), (("grow_mask", (0, 100)),), optional_files=("mask",),
                           **EDIT_PIXELS),
    "edit/search-and-replace": EditSpec(5, ("prompt", "search_prompt"), (*COMMON, *STYLED, "grow_mask"),
                                        (("grow_mask", (0, 20)),), aspect_rule=True, **EDIT_PIXELS),
    "edit/search-and-recolor": EditSpec(5, ("prompt", "select_prompt"), (*COMMON, *STYLED, "grow_mask"),
                                        (("grow_mask", (0, 20)),), **EDIT_PIXELS),
    "edit/remove-background": EditSpec(5, (), ("output_format",), max_pixels=4_194_304, formats=("png", "webp"),
                                       output="cutout"),
    "edit/replace-background-and-relight": EditSpec(
        8, ("background_prompt",), (*COMMON, "foreground_prompt", "light_source_direction", "light_source_strength",
                                    "preserve_original_subject", "original_background_depth",
                                    "keep_original_background"),
        (("light_source_strength", UNIT), ("preserve_original_subject", UNIT), ("original_background_depth", UNIT)),
        files=("subject_image",), max_pixels=9_437_184, aspect_rule=True, is_async=True),
    "upscale/fast": EditSpec(2, (), ("output_format",), min_side=32, max_side=1_536, min_pixels=1_024,
                             max_pixels=1_048_576, output="x4"),
    "upscale/conservative": EditSpec(40, ("prompt",), (*COMMON, "negative_prompt", "creativity"),
                                     (("creativity", (0.2, 0.5)),), max_pixels=9_437_184, output="4mp"),
    "upscale/creative": EditSpec(60, ("prompt",), (*COMMON, *STYLED, "creativity"), (("creativity", (0.1, 0.5)),),
                                 max_pixels=1_048_576, is_async=True, output="x4"),
    "control/sketch": EditSpec(5, ("prompt",), (*COMMON, *STYLED, "control_strength"), (("control_strength", UNIT),),
                               max_pixels=9_437_184, aspect_rule=True),
    "control/structure": EditSpec(5, ("prompt",), (*COMMON, *STYLED, "control_strength"),
                                  (("control_strength", UNIT),), max_pixels=9_437_184, aspect_rule=True),
    "control/style": EditSpec(5, ("prompt",), (*COMMON, *STYLED, "fidelity", "aspect_ratio"), (("fidelity", UNIT),),
                              max_pixels=9_437_184, aspect_rule=True, output="1mp"),
    "control/style-transfer": EditSpec(
        8, (), (*COMMON, "prompt", "negative_prompt", "style_strength", "composition_fidelity", "change_strength"),
        (("style_strength", UNIT), ("composition_fidelity", UNIT), ("change_strength", (0.1, 1.0))),
        files=("init_image", "style_image"), max_side=16_383),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered, kept for test assertions."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    files: dict[str, int]
    status: int
    arrived_at: float
    answered_at: float
    # Each file part's content type and, when it decodes as an image, its pixel size and mode.
    file_types: dict[str, str] = field(default_factory=dict)
    file_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    file_modes: dict[str, str] = field(default_factory=dict)

    @property
    def is_generate(self) -> bool:
        """Whether this was a request to a v2beta generate endpoint (text to image)."""
        return self.path.startswith(GENERATE_PREFIX) and "image" not in self.files

    @property
    def is_edit(self) -> bool:
        """Whether this was a POST to an endpoint that starts from an image (image-to-image included)."""
        return self.method == "POST" and self.path.startswith(STABLE_IMAGE_PREFIX) and not self.is_generate


@dataclass
class _Scripted:
    """A queued forced answer for the next generate requests."""

    status: int
    body: dict[str, Any] | bytes | None
    headers: dict[str, str]
    remaining: int


@dataclass
class _Outcome:
    """The answer being built for one request, plus what to record about it."""

    response: Response
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    file_types: dict[str, str] = field(default_factory=dict)
    file_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    file_modes: dict[str, str] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log each request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request access log line."""


def error_body(status: int, *messages: str) -> dict[str, Any]:
    """Build a v2beta error body for ``status`` with a fresh 32-hex id."""
    name = ERROR_NAMES.get(status, f"http_{status}")
    msgs = list(messages) or [DEFAULT_MESSAGES.get(status, name)]
    ident = "rate_limit_exceeded" if status == 429 else uuid.uuid4().hex
    return {"id": ident, "name": name, "errors": msgs}


def _json_response(status: int, body: dict[str, Any], content_type: str = "application/json") -> Response:
    """Serialise ``body`` as a JSON response."""
    return Response(json.dumps(body), status=status, content_type=content_type)


def _error(status: int, *messages: str) -> Response:
    """Answer with the v2beta error JSON."""
    return _json_response(status, error_body(status, *messages))


def _v1_error(status: int, message: str) -> Response:
    """Answer with the v1 error JSON (single message string)."""
    name = ERROR_NAMES.get(status, f"http_{status}")
    return _json_response(status, {"id": uuid.uuid4().hex, "name": name, "message": message})


def pixel_size(endpoint: str, aspect_ratio: str) -> tuple[int, int]:
    """Return the (width, height) the contract lists for an endpoint and ratio."""
    table = SIZES_CORE if endpoint == "core" else SIZES_1MP
    return table[aspect_ratio]


@lru_cache(maxsize=64)
def render_image(width: int, height: int, fmt: str, digest: bytes, filtered: bool) -> bytes:
    """Draw a flat colour plus a few shapes derived from ``digest`` and encode it."""
    if filtered:
        grey = 96 + digest[0] % 64
        img = Image.new("RGB", (width, height), (grey, grey, grey))
    else:
        img = Image.new("RGB", (width, height), (digest[0], digest[1], digest[2]))
        draw = ImageDraw.Draw(img)
        for i in range(3):
            b = digest[3 + i * 7: 10 + i * 7]
            x0, y0 = b[0] * width // 512, b[1] * height // 512
            x1, y1 = x0 + (64 + b[2]) * width // 512, y0 + (64 + b[3]) * height // 512
            shape = draw.ellipse if i % 2 == 0 else draw.rectangle
            shape((x0, y0, x1, y1), fill=(b[4], b[5], b[6]))
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, "PNG", compress_level=1)
    elif fmt == "jpeg":
        img.save(buf, "JPEG", quality=85)
    else:
        img.save(buf, "WEBP", lossless=True, method=0)
    return buf.getvalue()


class FakeStability:
    """A loopback HTTP server that behaves like Stability AI's v2beta API."""

    def __init__(
        self,
        api_key: str = "test-key",
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = (150, 10.0),
        lockout: float = 60.0,
        port: int = 0,
        credits: float = 10_000.0,
        hold_until: int | None = None,
        async_polls: int = 1,
        detailed_upscales: bool = False,
    ) -> None:
        """Configure the fake; call ``start()`` (or use ``with``) to serve.

        With ``hold_until``, images are answered once that many generate requests are in flight together, or
        after ``latency`` at the latest: a concurrency test then holds on a busy machine without a longer sleep."""
        self.api_key = api_key
        self.latency = latency
        self.rate_limit = rate_limit
        self.lockout = lockout
        self.port = port
        self.credits = credits
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._records: list[RecordedRequest] = []
        self._window: collections.deque[float] = collections.deque()
        self._locked_until = 0.0
        self._count_429 = 0
        self._in_flight = 0
        self._max_concurrency = 0
        self.hold_until = hold_until
        self._held_enough = threading.Event()
        self._prompt_hits: collections.Counter[str] = collections.Counter()
        self._scripted: collections.deque[_Scripted] = collections.deque()
        # Async results: how many polls answer 202 before the image; pending id -> [polls left, spec, params].
        self.async_polls = async_polls
        self._pending: dict[str, list[Any]] = {}
        # Fast upscales answer with incompressible detail (a photo's weight), for the memory benchmark.
        self.detailed_upscales = detailed_upscales

    # ----- lifecycle -------------------------------------------------------

    def start(self) -> Self:
        """Bind to 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = make_server(
            "127.0.0.1", self.port, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-stability", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, waking any request still sleeping."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        """Start the server for a ``with`` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server at the end of a ``with`` block."""
        self.stop()

    @property
    def base_url(self) -> str:
        """The root URL to use as STABILITY_API_BASE_URL."""
        if self._server is None:
            raise RuntimeError("FakeStability is not running; call start() first")
        return f"http://127.0.0.1:{self.port}"

    # ----- assertions and control -----------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every answered request, in answer order."""
        with self._lock:
            return list(self._records)

    @property
    def generate_requests(self) -> list[RecordedRequest]:
        """A snapshot of the answered generate requests only."""
        return [r for r in self.requests if r.is_generate]

    @property
    def count_429(self) -> int:
        """How many 429 answers were given."""
        with self._lock:
            return self._count_429

    @property
    def max_concurrency(self) -> int:
        """The most generate requests that were being served at one moment."""
        with self._lock:
            return self._max_concurrency

    @property
    def in_flight(self) -> int:
        """How many generate requests are being served right now."""
        with self._lock:
            return self._in_flight

    @property
    def locked_out(self) -> bool:
        """Whether the rate-limit lockout is in force right now."""
        with self._lock:
            return time.monotonic() < self._locked_until

    def reset(self) -> None:
        """Forget records, counters, the rate window, lockout and scripts."""
        with self._lock:
            self._records.clear()
            self._window.clear()
            self._locked_until = 0.0
            self._count_429 = 0
            self._max_concurrency = self._in_flight
            self._prompt_hits.clear()
            self._scripted.clear()

    def script(
        self,
        status: int,
        body: dict[str, Any] | bytes | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Force the next ``times`` valid generate requests to get this answer."""
        if body is None and status < 400:
            raise ValueError("a non-error scripted answer needs a body")
        with self._lock:
            self._scripted.append(_Scripted(status, body, dict(headers or {}), times))

    # ----- WSGI ------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """WSGI entry point: route, answer and record one request."""
        request = Request(environ)
        arrived = time.monotonic()
        generate = request.method == "POST" and request.path.startswith(STABLE_IMAGE_PREFIX)
        if generate:
            with self._lock:
                self._in_flight += 1
                self._max_concurrency = max(self._max_concurrency, self._in_flight)
                if self.hold_until is not None and self._max_concurrency >= self.hold_until:
                    self._held_enough.set()
        try:
            outcome = self._route(request, arrived)
        finally:
            request.close()
            if generate:
                with self._lock:
                    self._in_flight -= 1
        status = outcome.response.status_code
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            form=outcome.form,
            files=outcome.files,
            file_types=outcome.file_types,
            file_sizes=outcome.file_sizes,
            file_modes=outcome.file_modes,
            status=status,
            arrived_at=arrived,
            answered_at=time.monotonic(),
        )
        with self._lock:
            self._records.append(record)
            if status == 429:
                self._count_429 += 1
        return outcome.response(environ, start_response)

    def _route(self, request: Request, arrived: float) -> _Outcome:
        """Dispatch to the endpoint handlers; anything unknown is 404."""
        path = request.path
        if request.method == "POST" and path.startswith(STABLE_IMAGE_PREFIX):
            endpoint = path[len(STABLE_IMAGE_PREFIX):]
            if endpoint in EDIT_ENDPOINTS and not path.startswith(GENERATE_PREFIX):
                return self._edit(request, endpoint, arrived)
        if request.method == "POST" and path.startswith(GENERATE_PREFIX):
            endpoint = path[len(GENERATE_PREFIX):]
            if endpoint in ENDPOINTS:
                return self._generate(request, endpoint, arrived)
        if request.method == "GET" and path.startswith(RESULTS_PREFIX):
            return _Outcome(self._result(request, path[len(RESULTS_PREFIX):], arrived))
        if request.method == "GET" and path.startswith(CREATIVE_RESULT_PREFIX):
            return _Outcome(self._result(request, path[len(CREATIVE_RESULT_PREFIX):], arrived))
        if request.method == "GET" and path in ("/v1/user/balance", "/v1/user/account"):
            return _Outcome(self._v1(request, path))
        if path.startswith("/v1/"):
            return _Outcome(_v1_error(404, MSG_NOT_FOUND))
        return _Outcome(_error(404))

    def _authorized(self, request: Request) -> bool:
        """Check the ``authorization: Bearer <key>`` header."""
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"

    def _v1(self, request: Request, path: str) -> Response:
        """Answer the v1 account endpoints."""
        if not self._authorized(request):
            return _v1_error(401, "missing or invalid API key")
        if path == "/v1/user/balance":
            with self._lock:
                return _json_response(200, {"credits": float(self.credits)})
        return _json_response(200, {
            "id": "user-fake-0001",
            "email": "fake@example.invalid",
            "profile_picture": "https://example.invalid/avatar.png",
            "organizations": [],
        })

    def _rate_check(self, arrived: float) -> Response | None:
        """Apply lockout and the sliding-window limit; return a 429 if refused."""
        with self._lock:
            if arrived < self._locked_until:
                return self._rate_error()
            if self.rate_limit is None:
                return None
            limit, window = self.rate_limit
            while self._window and self._window[0] <= arrived - window:
                self._window.popleft()
            if len(self._window) >= limit:
                self._locked_until = arrived + self.lockout
                self._window.clear()
                return self._rate_error()
            self._window.append(arrived)
            return None

    def _rate_error(self) -> Response:
        """Build the 429 answer with the configured numbers in its message."""
        limit, window = self.rate_limit or (150, 10.0)
        return _error(429, (
            f"You have exceeded the rate limit of {limit} requests within a "
            f"{window:g} second period, and have been timed out for {self.lockout:g} seconds."
        ))

    def _gated(self, request: Request, arrived: float) -> _Outcome | tuple[dict[str, str], dict[str, tuple]]:
        """The gates every POST passes first (rate limit, body size, key, multipart): a refusal, or its parts."""
        refused = self._rate_check(arrived)
        if refused is not None:
            return _Outcome(refused)
        try:
            raw = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return _Outcome(_error(413))
        if len(raw) > MAX_BODY_BYTES:
            return _Outcome(_error(413))
        if not self._authorized(request):
            return _Outcome(_error(401))
        if request.mimetype != "multipart/form-data":
            return _Outcome(_error(400, MSG_MULTIPART))
        try:
            form = request.form.to_dict()
            blobs = {name: (f.read(), f.mimetype) for name, f in request.files.items()}
        except RequestEntityTooLarge:
            return _Outcome(_error(413))
        return form, blobs

    def _generate(self, request: Request, endpoint: str, arrived: float) -> _Outcome:
        """Handle one POST to a v2beta generate endpoint."""
        parts = self._gated(request, arrived)
        if isinstance(parts, _Outcome):
            return parts
        form, blobs = parts
        if "image" in blobs and endpoint in ("ultra", "sd3"):
            return self._edit_parsed(request, "generate/" + endpoint, form, blobs)
        files = {name: len(data) for name, (data, _) in blobs.items()}
        outcome = _Outcome(_error(500), form=form, files=files)
        errors, params = self._validate(request, endpoint, form, files)
        if errors:
            outcome.response = _error(400, *errors)
            return outcome
        outcome.response = self._answer(endpoint, params)
        return outcome

    def _validate(
        self, request: Request, endpoint: str, form: dict[str, str], files: dict[str, int]
    ) -> tuple[list[str], dict[str, Any]]:
        """Check headers and form fields; return (errors, normalised params)."""
        errors: list[str] = []
        for name in CLIENT_HEADERS:
            if len(request.headers.get(name, "")) > MAX_CLIENT_HEADER_CHARS:
                errors.append(f"{name}: must be no more than {MAX_CLIENT_HEADER_CHARS} characters")
        accept = request.headers.get("accept", "").lower()
        if "application/json" in accept:
            as_json = True
        elif accept == "" or "image/" in accept or "*/*" in accept:
            as_json = False
        else:
            as_json = False
            errors.append("accept: must be image/* or application/json")

        prompt = form.get("prompt", "")
        if not prompt.strip():
            errors.append("prompt: is required")
        elif len(prompt) > MAX_PROMPT_CHARS:
            errors.append(f"prompt: must be no more than {MAX_PROMPT_CHARS} characters")
        if len(form.get("negative_prompt", "")) > MAX_PROMPT_CHARS:
            errors.append(f"negative_prompt: must be no more than {MAX_PROMPT_CHARS} characters")

        aspect_ratio = form.get("aspect_ratio", "1:1")
        if aspect_ratio not in ASPECT_RATIOS:
            errors.append(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
            aspect_ratio = "1:1"

        seed = 0
        seed_text = form.get("seed", "0").strip()
        if SEED_RE.fullmatch(seed_text) and int(seed_text) <= MAX_SEED:
            seed = int(seed_text)
        else:
            errors.append(f"seed: must be an integer between 0 and {MAX_SEED}")

        output_format = form.get("output_format", "png")
        if output_format not in OUTPUT_FORMATS:
            errors.append(f"output_format: must be one of {', '.join(OUTPUT_FORMATS)}")
            output_format = "png"

        if "style_preset" in form and form["style_preset"] not in STYLE_PRESETS:
            errors.append("style_preset: must be one of " + ", ".join(STYLE_PRESETS))

        model = endpoint
        if endpoint == "sd3":
            model = SD3_MODELS.get(form.get("model", "sd3.5-large"), "")
            if not model:
                errors.append("model: must be one of " + ", ".join(SD3_MODELS))
            mode = form.get("mode", "text-to-image")
            if mode not in ("text-to-image", "image-to-image"):
                errors.append("mode: must be one of text-to-image, image-to-image")
            elif mode == "image-to-image":
                if not files.get("image"):
                    errors.append("image: is required")
                if "strength" not in form:
                    errors.append("strength: is required")
            if "cfg_scale" in form:
                try:
                    cfg = float(form["cfg_scale"])
                except ValueError:
                    cfg = -1.0
                if not 1.0 <= cfg <= 10.0:
                    errors.append("cfg_scale: must be a number between 1 and 10")
        elif "cfg_scale" in form:
            errors.append(f"cfg_scale: is not a valid parameter for {endpoint}")

        params = {
            "prompt": prompt,
            "aspect_ratio": aspect_ratio,
            "seed": seed,
            "output_format": output_format,
            "model": model,
            "as_json": as_json,
        }
        return errors, params

    def _take_script(self) -> _Scripted | None:
        """Pop one use of the next queued forced answer, if any."""
        with self._lock:
            if not self._scripted:
                return None
            item = self._scripted[0]
            item.remaining -= 1
            if item.remaining <= 0:
                self._scripted.popleft()
            return item

    def _answer(self, endpoint: str, params: dict[str, Any]) -> Response:
        """Sleep for the latency, then answer a valid generate request."""
        prompt: str = params["prompt"]
        delay = self.latency + (SLOW_EXTRA_SECONDS if "[slow]" in prompt else 0.0)
        if "[hang]" in prompt:
            delay = HANG_SECONDS
        if self.hold_until is not None:
            self._held_enough.wait(delay)
        elif delay > 0:
            self._stopping.wait(delay)

        scripted = self._take_script()
        if scripted is not None:
            if isinstance(scripted.body, bytes):
                resp = Response(scripted.body, status=scripted.status)
            else:
                body = scripted.body if scripted.body is not None else error_body(scripted.status)
                resp = _json_response(scripted.status, body)
            for key, value in scripted.headers.items():
                resp.headers[key] = value
            return resp

        if "[moderate]" in prompt:
            return _error(403, MSG_MODERATION)
        if "[nocredits]" in prompt:
            return _error(402, MSG_NO_CREDITS)
        if "[e422]" in prompt:
            return _error(422, MSG_LANGUAGE)
        if "[e500x2]" in prompt:
            with self._lock:
                self._prompt_hits[prompt] += 1
                hits = self._prompt_hits[prompt]
            if hits <= 2:
                return _error(500, MSG_INTERNAL)
        if "[e500]" in prompt:
            return _error(500, MSG_INTERNAL)
        if "[e503]" in prompt:
            return _error(503, MSG_UNAVAILABLE)

        cost = CREDITS_PER_IMAGE[params["model"]]
        with self._lock:
            if self.credits < cost:
                return _error(402, MSG_NO_CREDITS)
            self.credits -= cost

        seed = params["seed"] or random.randint(1, MAX_SEED)
        fmt: str = params["output_format"]
        finish = "CONTENT_FILTERED" if "[filter]" in prompt else "SUCCESS"
        if "[garbage]" in prompt:
            data = GARBAGE_BODY
            fmt = "png"
        else:
            width, height = pixel_size(endpoint, params["aspect_ratio"])
            digest = hashlib.sha256(prompt.encode("utf-8")).digest()
            data = render_image(width, height, fmt, digest, finish == "CONTENT_FILTERED")

        request_id = uuid.uuid4().hex
        if params["as_json"]:
            body = {
                "image": base64.b64encode(data).decode("ascii"),
                "finish_reason": finish,
                "seed": seed,
            }
            resp = _json_response(200, body, content_type=f"application/json; type=image/{fmt}")
        else:
            resp = Response(data, status=200, content_type=f"image/{fmt}")
            resp.headers["finish-reason"] = finish
        resp.headers["seed"] = str(seed)
        resp.headers["x-request-id"] = request_id
        return resp


    # ----- endpoints that start from an image -------------------------------

    @property
    def edit_requests(self) -> list[RecordedRequest]:
        """A snapshot of the answered POSTs to endpoints that start from an image."""
        return [r for r in self.requests if r.is_edit]

    @property
    def result_requests(self) -> list[RecordedRequest]:
        """A snapshot of the answered polls of async results."""
        return [r for r in self.requests if r.method == "GET" and r.path.startswith((RESULTS_PREFIX,
                                                                                       CREATIVE_RESULT_PREFIX))]

    def release_results(self) -> None:
        """Make every async result accepted so far ready: its next poll answers 200."""
        with self._lock:
            for pending in self._pending.values():
                pending[0] = 0

    def _edit(self, request: Request, endpoint: str, arrived: float) -> _Outcome:
        """Handle one POST to an endpoint that starts from an image: the same gates as generate, then its spec."""
        parts = self._gated(request, arrived)
        if isinstance(parts, _Outcome):
            return parts
        return self._edit_parsed(request, endpoint, *parts)

    def _edit_parsed(self, request: Request, endpoint: str, form: dict[str, str],
                     blobs: dict[str, tuple[bytes, str]]) -> _Outcome:
        """Validate a parsed edit request against its spec, then answer it (or accept it, when async)."""
        spec = EDIT_ENDPOINTS[endpoint]
        images = {name: _open_image(data) for name, (data, _) in blobs.items()}
        outcome = _Outcome(_error(500), form=form, files={name: len(data) for name, (data, _) in blobs.items()},
                           file_types={name: mime for name, (_, mime) in blobs.items()},
                           file_sizes={name: image.size for name, image in images.items() if image is not None},
                           file_modes={name: image.mode for name, image in images.items() if image is not None})
        errors, params = self._validate_edit(request, endpoint, spec, form, images)
        if errors:
            outcome.response = _error(400, *errors)
            return outcome
        outcome.response = self._answer_edit(endpoint, spec, params)
        return outcome

    def _validate_edit(self, request: Request, endpoint: str, spec: EditSpec, form: dict[str, str],
                       images: dict[str, Image.Image | None]) -> tuple[list[str], dict[str, Any]]:
        """The contract's rules for this endpoint: required and known fields, numbers, files and their limits."""
        errors, params = self._validate(request, "sd3" if endpoint == "generate/sd3" else "edit", form, {})
        # _validate's prompt and mode rules are generate's: this endpoint's own replace them.
        generate_rules = ("prompt:", "mode:", "model:", "cfg_scale:", "image:", "strength:")
        errors = [e for e in errors if not e.startswith(generate_rules)]
        known = {*spec.required, *spec.optional}
        for name in form:
            if name not in known:
                errors.append(f"{name}: is not a valid parameter for {endpoint}")
        for name in spec.required:
            if not form.get(name, "").strip():
                errors.append(f"{name}: is required")
        for name, (low, high) in spec.numbers:
            if name in form:
                try:
                    number = float(form[name])
                except ValueError:
                    number = math.nan
                if not low <= number <= high:
                    errors.append(f"{name}: must be a number between {low:g} and {high:g}")
        if params["output_format"] not in spec.formats:
            errors.append(f"output_format: must be one of {', '.join(spec.formats)}")
        if endpoint == "generate/sd3":
            if form.get("mode") != "image-to-image":
                errors.append("mode: must be image-to-image when an image is sent")
            if "aspect_ratio" in form:
                errors.append("aspect_ratio: is not a valid parameter for image-to-image")
            params["model"] = SD3_MODELS.get(form.get("model", "sd3.5-large"), "")
            if not params["model"]:
                errors.append("model: must be one of " + ", ".join(SD3_MODELS))
        if endpoint == "edit/outpaint" and not any(int(float(form.get(s, "0") or 0)) for s in ("left", "right", "up",
                                                                                               "down")
                                                   if _is_number(form.get(s, "0"))):
            errors.append("left: one of left, right, up or down must be above 0")
        if "light_source_direction" in form and form["light_source_direction"] not in LIGHT_DIRECTIONS:
            errors.append("light_source_direction: must be one of " + ", ".join(LIGHT_DIRECTIONS))
        if "keep_original_background" in form and form["keep_original_background"] not in ("true", "false"):
            errors.append("keep_original_background: must be true or false")
        for name in spec.files:
            if name not in images:
                errors.append(f"{name}: is required")
            elif images[name] is None:
                errors.append(f"{name}: must be a jpeg, png or webp image")
        for name in images:
            if name not in (*spec.files, *spec.optional_files, "none"):
                errors.append(f"{name}: is not a valid parameter for {endpoint}")
        image = images.get(spec.files[0])
        if image is not None:
            errors += _limit_errors(spec.files[0], spec, *image.size)
            mask = images.get("mask")
            if mask is not None and mask.size != image.size:
                errors.append("mask: must be the same size as the image")
        params.update(form=form, image=image, endpoint=endpoint)
        return errors, params

    def _answer_edit(self, endpoint: str, spec: EditSpec, params: dict[str, Any]) -> Response:
        """Sleep for the latency, apply scripts and markers, charge, then answer (sync) or accept (async)."""
        prompt = params["form"].get("prompt") or params["form"].get("background_prompt") or ""
        if self.hold_until is not None:
            self._held_enough.wait(self.latency)
        elif self.latency > 0:
            self._stopping.wait(self.latency)
        scripted = self._take_script()
        if scripted is not None:
            body = scripted.body if scripted.body is not None else error_body(scripted.status)
            return _json_response(scripted.status, body) if isinstance(body, dict) else Response(
                body, status=scripted.status)
        for marker, status, message in (("[moderate]", 403, MSG_MODERATION), ("[nocredits]", 402, MSG_NO_CREDITS),
                                        ("[e500]", 500, MSG_INTERNAL)):
            if marker in prompt:
                return _error(status, message)
        cost = spec.credits or CREDITS_PER_IMAGE[params["model"]]
        with self._lock:
            if self.credits < cost:
                return _error(402, MSG_NO_CREDITS)
            self.credits -= cost
        if not spec.is_async:
            return self._edit_image(spec, params)
        ident = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        with self._lock:
            self._pending[ident] = [self.async_polls, spec, params]
        return _json_response(200, {"id": ident})

    def _result(self, request: Request, ident: str, arrived: float) -> Response:
        """GET /v2beta/results/{id}: 202 while in progress (``async_polls`` times), then the image; 404 unknown."""
        refused = self._rate_check(arrived)
        if refused is not None:
            return refused
        if not self._authorized(request):
            return _error(401)
        with self._lock:
            pending = self._pending.get(ident)
            if pending is not None and pending[0] > 0:
                pending[0] -= 1
                return _json_response(202, {"id": ident, "status": "in-progress"})
        if pending is None:
            return _error(404)
        return self._edit_image(pending[1], pending[2])

    def _edit_image(self, spec: EditSpec, params: dict[str, Any]) -> Response:
        """The result image, sized as the endpoint's output is, in either accept mode."""
        image, form = params["image"], params["form"]
        width, height = _output_size(spec, image.size, form)
        fmt = params["output_format"]
        digest = hashlib.sha256(json.dumps(form, sort_keys=True).encode()).digest()
        if spec.output == "cutout":
            data = _cutout(width, height, fmt)
        elif spec.output == "x4" and self.detailed_upscales:
            data = render_detailed(width, height, fmt)
        else:
            data = render_image(width, height, fmt, digest, False)
        seed = int(form["seed"]) if form.get("seed", "0").isdigit() and int(form.get("seed", "0")) else (
            random.randint(1, MAX_SEED))
        if params["as_json"]:
            resp = _json_response(200, {"image": base64.b64encode(data).decode("ascii"), "finish_reason": "SUCCESS",
                                        "seed": seed}, content_type=f"application/json; type=image/{fmt}")
        else:
            resp = Response(data, status=200, content_type=f"image/{fmt}")
            resp.headers["finish-reason"] = "SUCCESS"
        resp.headers["seed"] = str(seed)
        resp.headers["x-request-id"] = uuid.uuid4().hex
        return resp


def _is_number(text: str | None) -> bool:
    """Whether a form value reads as a number."""
    try:
        float(text or "")
    except ValueError:
        return False
    return True


def _open_image(data: bytes) -> Image.Image | None:
    """A file part as an image (its header read, pixels loaded), or None if it is not a png, jpeg or webp."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("PNG", "JPEG", "WEBP"):
            return None
        image.load()
        return image
    except Exception:
        return None


def _limit_errors(name: str, spec: EditSpec, width: int, height: int) -> list[str]:
    """The endpoint's input limits on its image."""
    errors = []
    if min(width, height) < spec.min_side:
        errors.append(f"{name}: every side must be at least {spec.min_side} pixels")
    if spec.max_side and max(width, height) > spec.max_side:
        errors.append(f"{name}: every side must be at most {spec.max_side} pixels")
    if spec.min_pixels and width * height < spec.min_pixels:
        errors.append(f"{name}: must have at least {spec.min_pixels} pixels")
    if spec.max_pixels and width * height > spec.max_pixels:
        errors.append(f"{name}: must have at most {spec.max_pixels} pixels")
    if spec.aspect_rule and max(width, height) > 2.5 * min(width, height):
        errors.append(f"{name}: aspect ratio must be between 1:2.5 and 2.5:1")
    return errors


def _output_size(spec: EditSpec, size: tuple[int, int], form: dict[str, str]) -> tuple[int, int]:
    """The result's size for a source of `size`."""
    width, height = size
    if spec.output == "x4":
        scale = min(4.0, 4096 / max(width, height))
        return round(width * scale), round(height * scale)
    if spec.output in ("4mp", "1mp"):
        scale = math.sqrt((4 if spec.output == "4mp" else 1) * 1_048_576 / (width * height))
        return round(width * scale) // 64 * 64, round(height * scale) // 64 * 64
    if spec.output == "grow":
        grow = {side: int(float(form.get(side, "0") or 0)) for side in ("left", "right", "up", "down")}
        return width + grow["left"] + grow["right"], height + grow["up"] + grow["down"]
    return width, height


def _cutout(width: int, height: int, fmt: str) -> bytes:
    """A subject on a transparent background: an opaque disc in the middle."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(200, 80, 40, 255))
    buf = io.BytesIO()
    image.save(buf, "PNG" if fmt == "png" else "WEBP", **({"compress_level": 1} if fmt == "png" else {}))
    return buf.getvalue()


@lru_cache(maxsize=4)
def render_detailed(width: int, height: int, fmt: str) -> bytes:
    """An upscale's output as a photo's would weigh: noise that PNG cannot squeeze (tens of MB at 16 MP)."""
    rng = random.Random(width * 31 + height)
    tile = Image.frombytes("RGB", (256, 256), rng.randbytes(256 * 256 * 3))
    image = Image.new("RGB", (width, height))
    for x in range(0, width, 256):
        for y in range(0, height, 256):
            image.paste(tile.rotate(90 * ((x + y) // 256 % 4)), (x, y))
    buf = io.BytesIO()
    image.save(buf, {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt], **(
        {"compress_level": 1} if fmt == "png" else {"quality": 90}))
    return buf.getvalue()

def main(argv: list[str] | None = None) -> None:
    """Run the fake in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="Fake Stability AI API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0 = any free)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each image")
    parser.add_argument("--api-key", default="test-key", help="the accepted Bearer key")
    parser.add_argument("--rate-limit", default="150/10", help="N/SECONDS, or 'off'")
    parser.add_argument("--lockout", type=float, default=60.0, help="lockout seconds after a 429")
    parser.add_argument("--credits", type=float, default=10_000.0, help="starting balance")
    args = parser.parse_args(argv)
    rate: tuple[int, float] | None = None
    if args.rate_limit != "off":
        count, _, seconds = args.rate_limit.partition("/")
        rate = (int(count), float(seconds))
    fake = FakeStability(
        api_key=args.api_key,
        latency=args.latency,
        rate_limit=rate,
        lockout=args.lockout,
        port=args.port,
        credits=args.credits,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    fake.start()
    print(f"Fake Stability API listening on {fake.base_url}", flush=True)
    print(f"  STABILITY_API_BASE_URL={fake.base_url} STABILITY_API_KEY={args.api_key}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        print(f"stopped after {len(fake.requests)} requests", flush=True)


if __name__ == "__main__":
    main()
