"""Security headers: a strict Content-Security-Policy everywhere but the rq dashboard."""

from __future__ import annotations

from flask import Flask, Response, request

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# rq-dashboard's own templates use inline scripts; its pages sit behind basic auth.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def set_security_headers(response: Response) -> Response:
    """Add CSP and companions to every response."""
    dashboard = request.blueprint == "rq_dashboard"
    response.headers.setdefault("Content-Security-Policy", DASHBOARD_CSP if dashboard else STRICT_CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def register(app: Flask) -> None:
    """Install the header hook."""
    app.after_request(set_security_headers)
