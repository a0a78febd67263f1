"""Every error under /api/ as {"error": {"code", "message", "fields"?}}, whatever raised it."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping

from flask import jsonify
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.extensions import limiter

CODES = {
    400: "bad_request", 401: "unauthorized", 402: "over_allowance", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "validation_failed", 429: "rate_limited", 500: "server_error",
}
MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing at this address, or it is not yours.",
    405: "This address does not take that method.",
    413: "The request body is larger than 1 MiB.",
    422: "Some values are not valid; see fields.",
    500: "Something went wrong; the error has been logged.",
}
# Headers an error keeps from the exception that raised it (Allow on a 405, for one).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiProblem(HTTPException):
    """An answer the API gives on purpose: a status, a stable code for programs and a message for people."""

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(description=message)
        self.code = status
        self.error_code = code
        self.fields = dict(fields) if fields else None


def error_response(status: int, code: str, message: str, fields: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The error body every failure shares."""
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    response = jsonify(error=error)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def field_messages(messages: object, name: str = "") -> Iterator[tuple[str, str]]:
    """Flatten marshmallow's nested messages: {"prompts": {2: [...]}} -> ("prompts[2]", "…")."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if isinstance(key, int):
                child = f"{name}[{key}]"
            elif key == "_schema":
                child = name or "body"
            else:
                child = f"{name}.{key}" if name else str(key)
            yield from field_messages(value, child)
    elif isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        yield name or "body", " ".join(messages)
    elif isinstance(messages, list):
        for item in messages:
            yield from field_messages(item, name)
    else:
        yield name or "body", str(messages)


def _validation_fields(error: HTTPException) -> dict[str, str] | None:
    """Per-field messages webargs attached to a 400 or 422, without its location level ("json", "query")."""
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if not isinstance(messages, Mapping):
        return None
    fields: dict[str, str] = {}
    for location_messages in messages.values():
        fields.update(field_messages(location_messages))
    return fields or None


def retry_after_seconds() -> int:
    """Whole seconds until the breached limit's window lets a request through again."""
    limit = limiter.current_limit
    return max(1, math.ceil(limit.reset_at - time.time())) if limit else 60


def http_error_response(error: HTTPException) -> Response:
    """Any HTTP error raised under /api/ in the API's shape."""
    status = error.code or 500
    headers = {name: value for name, value in error.get_headers() if name in KEPT_HEADERS}
    if isinstance(error, ApiProblem):
        return error_response(status, error.error_code, error.description or "", error.fields, headers)
    if isinstance(error, RateLimitExceeded):
        seconds = retry_after_seconds()
        return error_response(429, "rate_limited", f"Too many requests ({error.description}); try again in "
                              f"{seconds} s.", headers={"Retry-After": str(seconds)})
    fields = _validation_fields(error) if status in (400, 422) else None
    message = MESSAGES.get(status) or error.description or error.name
    if status == 400 and fields:
        message = "The request body is not valid JSON." if "body" in fields or "json" in fields else message
    return error_response(status, CODES.get(status, error.name.lower().replace(" ", "_")), message, fields, headers)


def csrf_error_response() -> Response:
    """A cookie-session request without its CSRF token."""
    return error_response(400, "csrf_failed", "Requests made with a browser session need its CSRF token in an "
                          "X-CSRFToken header; scripts should send an API token instead.")


def server_error_response() -> Response:
    """An unexpected failure: nothing of it reaches the client."""
    return error_response(500, CODES[500], MESSAGES[500])
