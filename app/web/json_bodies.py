"""JSON request bodies: only the API takes them, nested at most JSON_MAX_DEPTH deep, and never a RecursionError."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider

from app.api.errors import ApiProblem

# A JSON string (escapes included), whose brackets are text, not nesting. Read as UTF-8 bytes: no byte of a
# multi-byte character is ASCII, so a quote, a backslash or a bracket byte is always that character.
STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Openers become 2 and closers 0 (so that "minus 1" is each bracket's step in depth); every other byte goes.
STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _utf8(body: bytes) -> bytes:
    """The body as UTF-8, whichever of the encodings json.loads accepts it came in."""
    encoding = json.detect_encoding(body)
    return body if encoding == "utf-8" else body.decode(encoding, "replace").encode("utf-8")


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether a JSON text opens more than `limit` arrays or objects inside each other (checked without recursing)."""
    data = _utf8(body)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    steps = STRING.sub(b"", data).translate(STEPS, NOT_BRACKETS)
    # Every byte is handled in C (the regex, translate, numpy's running sum): a 1 MiB body is never read in Python.
    depths = np.cumsum(np.frombuffer(steps, dtype=np.int8) - 1, dtype=np.int32)
    return bool(depths.size) and int(depths.max()) > limit


def refuse_unusable_json() -> None:
    """Before every request: a JSON body to a page (pages take forms) is a 415, one nested too deep a 400."""
    body = request.get_data(cache=True) if request.is_json else b""
    if not body:
        return
    if not request.path.startswith("/api/"):
        raise ApiProblem(415, "unsupported_media_type", "Pages take form data; only the API under /api/ takes JSON.")
    limit = current_app.config["JSON_MAX_DEPTH"]
    if nested_deeper_than(body, limit):
        raise ApiProblem(400, "bad_request", f"The JSON body nests arrays or objects more than {limit} deep.",
                         {"body": f"Nest arrays and objects at most {limit} deep."})


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where input too deep for the parser is invalid JSON (a 400) rather than a RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:  # noqa: ANN401
        """Parse as Flask does; a RecursionError becomes the ValueError Flask answers 400 for."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deep to parse") from None


def register(app: Flask) -> None:
    """Install the provider and the check."""
    app.json = GuardedJSONProvider(app)
    app.before_request(refuse_unusable_json)
