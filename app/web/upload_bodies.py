"""The one place a request body may exceed MAX_CONTENT_LENGTH: an upload, up to its file's limit and a little
room for the form around it; a larger one is refused by its declared length, before anything reads it."""

from __future__ import annotations

from flask import Flask, request

from app.api.errors import ApiProblem
from app.imaging.uploads import TOO_LARGE, UPLOAD_MAX_BYTES

# The edit form carries a painted mask, a PNG of the image's size.
UPLOAD_ENDPOINTS = frozenset({"gallery.upload", "api.create_upload", "edits.submit"})
FORM_ROOM = 64 * 1024  # the multipart boundaries, the CSRF token and the part headers


def allow_upload_bodies() -> None:
    """Before every other check (the CSRF check reads the form): an upload's body may be as large as its file."""
    if request.endpoint not in UPLOAD_ENDPOINTS:
        return
    limit = UPLOAD_MAX_BYTES + FORM_ROOM
    if request.content_length is not None and request.content_length > limit:
        raise ApiProblem(413, "too_large", TOO_LARGE, {"file": TOO_LARGE})
    request.max_content_length = limit  # a body sent without a length is cut at the same size


def register(app: Flask) -> None:
    """Run first of the before-request functions: CSRFProtect's, registered with the extensions, reads the form."""
    app.before_request_funcs.setdefault(None, []).insert(0, allow_upload_bodies)
