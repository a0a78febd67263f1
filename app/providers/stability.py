"""Client for Stability AI's v2beta image generation API (no Flask import)."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from typing import Protocol

import requests
import requests.adapters
import urllib3.exceptions
from redis.exceptions import RedisError

from app import telemetry
from app.logs import note_api_request_id
from app.providers.base import EditRequest, GeneratedImage, GenerationError, GenerationRequest
from app.providers.operations import OPERATIONS
from app.providers.options import MODELS
from app.providers.rate_limit import RateLimitTimeout

log = logging.getLogger(__name__)

APP_NAME = "image-generator"
APP_VERSION = "0.1.0"
# (connect, read): generation is synchronous and can take tens of seconds.
DEFAULT_TIMEOUT = (5.0, 120.0)
# Longest waits for a rate-limit slot: a generation may sit out a whole lockout; the balance is a nicety.
RATE_LIMIT_WAIT = 150.0
BALANCE_WAIT = 2.0

# What a person is told for each error status; {detail} is the API's own message.
REASONS = {
    400: "The API rejected the request: {detail}",
    401: "Invalid API key: the operator must fix the server's STABILITY_API_KEY",
    402: "Out of credits: the Stability account needs a top-up",
    403: "Blocked by content moderation (not charged)",
    404: "The API does not know this endpoint or model",
    413: "The request was too large for the API",
    422: "The API refused the prompt: {detail}",
    429: "Rate limited by the API; try again in a minute",
}
SERVER_ERROR_REASON = "Stability AI had a server error ({status}); try again later"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
BROKE_OFF = "The Stability API's answer broke off while it was read"


class Limiter(Protocol):
    """The shared rate limiter the client waits on (see app/providers/rate_limit.py)."""

    def acquire(self, timeout: float | None = None) -> float:
        """Block until a request may be sent."""
        ...

    def lock_out(self, seconds: float | None = None) -> None:
        """Make every process pause after a 429."""
        ...


def endpoint_for(model: str) -> str:
    """Return the generate path for a model: SD 3.5 variants share /sd3, chosen by a form field."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}")
    return MODELS[model].endpoint


RESULTS_PATH = "/v2beta/results/"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _as_text(value: object) -> str:
    """A multipart field's text: 4.0 as "4" and 4.5 as "4.5", whole numbers in full, booleans as the API's words."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def edit_form_fields(request: EditRequest) -> dict[str, str]:
    """The text fields of an operation's request: its own fields, and the generate fields it takes when set."""
    op = OPERATIONS[request.operation]
    options = request.options
    fields = {"prompt": request.prompt} if request.prompt else {}
    for name, value in request.params.items():
        if value is not None and op.fields and any(f.name == name and f.kind != "image" for f in op.fields):
            fields[name] = _as_text(value)
    if op.credits is None:  # image-to-image: SD 3.5 names its model and mode; Ultra has an endpoint of its own
        fields.pop("model", None)
        if MODELS[options.model].takes_cfg_scale:
            fields.update(mode="image-to-image", model=options.model)
            if options.cfg_scale is not None:
                fields["cfg_scale"] = _as_text(options.cfg_scale)
    if op.takes_seed and options.seed:
        fields["seed"] = str(options.seed)
    if op.takes_style_preset and options.style_preset:
        fields["style_preset"] = options.style_preset
    if op.takes_negative_prompt and options.negative_prompt:
        fields["negative_prompt"] = options.negative_prompt
    fields["output_format"] = options.output_format
    return fields


def edit_files(request: EditRequest) -> dict[str, tuple[str, bytes, str]]:
    """The file parts: the source under the operation's part name, and the mask or the style image it takes."""
    op = OPERATIONS[request.operation]
    files = {op.image_field: (f"image.{EXTENSIONS.get(request.image_type, 'png')}", request.image,
                              request.image_type)}
    if request.mask is not None:
        files["mask"] = ("mask.png", request.mask, "image/png")
    if request.style_image is not None:
        style_type = request.style_type or "image/png"
        files["style_image"] = (f"style.{EXTENSIONS.get(style_type, 'png')}", request.style_image, style_type)
    return files


def form_fields(request: GenerationRequest) -> dict[str, str]:
    """Build the multipart text fields; numbers go as decimal strings, empty options are left out."""
    options = request.options
    fields = {"prompt": request.prompt}
    # Every option goes by its own name, unless empty.
    for name, value in options.as_dict().items():
        if value is not None and value != "":
            fields[name] = _as_text(value)
    if not MODELS[options.model].takes_cfg_scale:
        # Core and Ultra have an endpoint each and take no model field, nor a cfg_scale.
        fields.pop("model")
        fields.pop("cfg_scale", None)
    return fields


def error_from_response(response: requests.Response) -> GenerationError:
    """Turn a non-200 answer into a GenerationError carrying the API's error id."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    messages = body.get("errors") or ([body["message"]] if body.get("message") else [])
    detail = "; ".join(str(m) for m in messages) or body.get("name") or f"HTTP {status}"
    template = REASONS.get(status)
    if template is None:
        template = SERVER_ERROR_REASON if status >= 500 else "The API answered HTTP {status}: {detail}"
    reason = template.format(detail=detail, status=status)
    return GenerationError(
        reason,
        transient=status in TRANSIENT_STATUSES,
        status_code=status,
        error_id=body.get("id"),
        request_id=request_id,
    )


def pooled_session(size: int) -> requests.Session:
    """An HTTP session keeping up to `size` connections open to the API: one per job a process runs at once."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class StabilityClient:
    """Calls the generate endpoints, and those that start from an image, with one pooled HTTP session per client."""

    name = "stability"
    supports_async = True

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.stability.ai",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        accept: str = "image/*",
        limiter: Limiter | None = None,
        pool_size: int = 10,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.accept = accept
        self.session = session or pooled_session(pool_size)
        self.limiter = limiter

    def __repr__(self) -> str:
        # Never let the key reach a log line through repr().
        return f"StabilityClient(base_url={self.base_url!r})"

    def _headers(self, accept: str) -> dict[str, str]:
        """Headers of every call; content-type is left to requests so it carries the boundary."""
        return {
            "authorization": f"Bearer {self._api_key}",
            "accept": accept,
            "stability-client-id": APP_NAME,
            "stability-client-version": APP_VERSION,
        }

    def generate(self, request: GenerationRequest) -> GeneratedImage:
        """Generate one image; raise GenerationError with a readable reason on any failure."""
        # A file part is what makes requests send multipart/form-data; the API ignores it.
        response = self._post(endpoint_for(request.options.model), form_fields(request), {"none": ""})
        return self._parse_success(response)

    def edit(self, request: EditRequest) -> GeneratedImage:
        """Make one image from an image with a sync operation; GenerationError on any failure."""
        response = self._post(self._edit_path(request), edit_form_fields(request), edit_files(request))
        return self._parse_success(response)

    def start_edit(self, request: EditRequest) -> str:
        """Send an async operation; return the result id the API answered with."""
        response = self._post(self._edit_path(request), edit_form_fields(request), edit_files(request))
        try:
            result_id = response.json()["id"]
        except (ValueError, KeyError, TypeError):
            result_id = None
        finally:
            response.close()
        if not isinstance(result_id, str) or not result_id.isalnum() or len(result_id) > 128:
            raise GenerationError("The API accepted the request but answered without a result id",
                                  request_id=response.headers.get("x-request-id"))
        return result_id

    def edit_result(self, result_id: str) -> GeneratedImage | None:
        """Poll an async operation's result: None while the API answers 202 (in progress), the image at 200."""
        self._wait_for_slot(RATE_LIMIT_WAIT)
        try:
            response = self.session.get(self.base_url + RESULTS_PATH + result_id, headers=self._headers(self.accept),
                                        timeout=self.timeout, stream=True)
        except requests.Timeout:
            raise GenerationError("The Stability API did not answer in time", transient=True) from None
        except requests.RequestException:
            raise GenerationError("Could not reach the Stability API", transient=True) from None
        self._note(RESULTS_PATH + "{id}", response)
        if response.status_code == 202:
            response.close()
            return None
        if response.status_code != 200:
            raise error_from_response(response)
        return self._parse_success(response)

    @staticmethod
    def _edit_path(request: EditRequest) -> str:
        """Where an operation posts to (image-to-image: by its model)."""
        return OPERATIONS[request.operation].endpoint_for(request.options.model)

    def _post(self, path: str, data: dict[str, str], files: dict[str, object]) -> requests.Response:
        """POST a multipart request after a rate-limit slot; a 200 answer's body is left unread (stream)."""
        self._wait_for_slot(RATE_LIMIT_WAIT)
        sent = time.monotonic()
        try:
            response = self.session.post(
                self.base_url + path,
                headers=self._headers(self.accept),
                data=data,
                files=files,
                timeout=self.timeout,
                # Headers now, the image when the job has room for it (app/worker/slots.py); read in one call.
                stream=True,
            )
        except requests.Timeout:
            raise GenerationError("The Stability API did not answer in time", transient=True) from None
        except requests.ConnectionError:
            raise GenerationError("Could not reach the Stability API", transient=True) from None
        except requests.RequestException as exc:
            raise GenerationError(f"Request to the Stability API failed: {type(exc).__name__}") from None
        telemetry.API_LATENCY.observe(time.monotonic() - sent)
        self._note(path, response)
        if response.status_code != 200:
            raise error_from_response(response)
        return response

    def _note(self, path: str, response: requests.Response) -> None:
        """Count and log an answer; a 429 locks every worker out."""
        telemetry.API_RESPONSES.labels(str(response.status_code)).inc()
        note_api_request_id(response.headers.get("x-request-id"))
        log.info("stability %s -> %s request_id=%s", path, response.status_code, response.headers.get("x-request-id"))
        if response.status_code == 429 and self.limiter is not None:
            self._lock_out()

    def _lock_out(self) -> None:
        """The API locks the whole account out after a 429; every worker must wait, not only this one."""
        try:
            self.limiter.lock_out()  # type: ignore[union-attr]
        except RedisError:
            # The 429 itself is still retried with backoff; only the shared pause is lost.
            log.warning("could not record the API's rate-limit lockout in Redis")

    def _wait_for_slot(self, timeout: float) -> None:
        """Take a slot from the shared rate limiter; waiting too long, or no Redis, is a transient failure."""
        if self.limiter is None:
            return
        try:
            telemetry.RATE_LIMIT_WAIT.inc(self.limiter.acquire(timeout=timeout))
        except RateLimitTimeout:
            raise GenerationError("Waited too long for the API's rate limit", transient=True) from None
        except RedisError:
            # Sending unlimited could earn the whole account a lockout; better to retry later.
            raise GenerationError("The rate limiter (Redis) is unavailable", transient=True) from None

    def balance(self) -> float:
        """Return the account's credits (GET /v1/user/balance); raise GenerationError on failure."""
        self._wait_for_slot(BALANCE_WAIT)
        try:
            response = self.session.get(self.base_url + "/v1/user/balance",
                                        headers=self._headers("application/json"), timeout=(self.timeout[0], 10))
        except requests.RequestException:
            raise GenerationError("Could not reach the Stability API", transient=True) from None
        if response.status_code != 200:
            raise error_from_response(response)
        try:
            return float(response.json()["credits"])
        except (ValueError, KeyError, TypeError):
            raise GenerationError("The API answered the balance request with something unexpected") from None

    def _parse_success(self, response: requests.Response) -> GeneratedImage:
        """Read an image from either response mode: raw bytes with headers, or base64 JSON."""
        content_type = response.headers.get("content-type", "")
        request_id = response.headers.get("x-request-id")
        if content_type.startswith("application/json"):
            return self._parse_json(response, content_type, request_id)
        seed = response.headers.get("seed")
        length = response.headers.get("content-length", "")
        return GeneratedImage(
            length=int(length) if length.isdigit() else None,
            mime_type=content_type.split(";")[0].strip(),
            seed=int(seed) if seed and seed.isdigit() else None,
            finish_reason=response.headers.get("finish-reason", "SUCCESS"),
            request_id=request_id,
            body=UnreadBody(response),
        )

    @staticmethod
    def _parse_json(response: requests.Response, content_type: str, request_id: str | None) -> GeneratedImage:
        """Decode the JSON mode: content-type is 'application/json; type=image/png'."""
        invalid = GenerationError("The API answered with something that is not a valid image",
                                  request_id=request_id)
        try:
            body = response.json()
            data = base64.b64decode(body["image"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise invalid from None
        mime_type = "image/png"
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key == "type" and value:
                mime_type = value
        seed = body.get("seed")
        return GeneratedImage(
            content=data,
            mime_type=mime_type,
            seed=int(seed) if isinstance(seed, int) else None,
            finish_reason=str(body.get("finish_reason") or "SUCCESS"),
            request_id=request_id,
        )


class UnreadBody:
    """A 200 answer's image, left in the socket until the job reads it whole, in one call."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response

    def read(self) -> bytes:
        """The whole body (requests' own `.content` reads it in 10 KB pieces, at twice the CPU)."""
        try:
            data = self.response.raw.read(decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError):
            # Cut short (fewer bytes than Content-Length), timed out or reset: the next attempt may do better.
            self.response.close()
            raise GenerationError(BROKE_OFF, transient=True,
                                  request_id=self.response.headers.get("x-request-id")) from None
        return data  # read whole, urllib3 has handed the connection back to the pool
