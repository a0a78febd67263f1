"""Error pages: every error answers with a page of ours (JSON under /api/), never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from app.api import errors as api_errors
from app.media_store.base import FileMissing, StoreError

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing at this address.",
    405: "That action is not allowed here.",
    413: "That submission is too large.",
}


def is_api_request() -> bool:
    """Programs call /api/: they get JSON errors, never a page."""
    return request.path.startswith("/api/")


def _render(status: int, title: str, message: str) -> tuple[str, int]:
    """Render the error page, or its fragment for htmx requests."""
    template = "errors/_message.html" if request.headers.get("HX-Request") else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status


def handle_http_error(error: HTTPException) -> tuple[str, int] | Response:
    """Show an HTTP error as a page (or the API's JSON)."""
    if is_api_request():
        return api_errors.http_error_response(error)
    status = error.code or 500
    if isinstance(error, api_errors.ApiProblem):  # raised on purpose, with its own words
        return _render(status, error.name, error.description or "")
    return _render(status, error.name, MESSAGES.get(status, error.description or ""))


def handle_csrf_error(error: CSRFError) -> tuple[str, int] | Response:
    """Explain an expired or missing CSRF token, and how to recover."""
    if is_api_request():
        return api_errors.csrf_error_response()
    return _render(400, "Form expired", "The form's security token was missing or expired. "
                   "Go back, reload the page and submit again.")


def handle_unexpected(error: Exception) -> tuple[str, int] | Response:
    """Log the traceback; show the person a plain apology."""
    if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
        return handle_http_error(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    if is_api_request():
        return api_errors.server_error_response()
    return _render(500, "Something went wrong", "The error has been logged. Please try again.")


def handle_store_error(error: StoreError) -> tuple[str, int] | Response:
    """A file the store cannot give now: a 503 saying so (a missing file is a 404), never a trace."""
    if isinstance(error, FileMissing):
        log.warning("stored file missing on %s: %s", request.path, error)
        return _render(404, "Image file missing", "This image's file is no longer stored.")
    log.warning("media store failed on %s %s: %s", request.method, request.path, error)
    if is_api_request():
        return api_errors.error_response(503, "store_unavailable", "The image store is not reachable right now; "
                                         "try again in a moment.")
    return _render(503, "Image store unavailable", "The image store is not reachable right now. "
                   "Please try again in a moment.")


def register(app: Flask) -> None:
    """Install the handlers."""
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(StoreError, handle_store_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
