"""Security headers: a strict Content-Security-Policy everywhere but the rq dashboard."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# rq-dashboard's pages alone: its templates use inline scripts and styles, and underscore's templates (its
# tables) are compiled with new Function, which needs 'unsafe-eval'. Only admins reach them, from this site only
# (app/ops/dashboard.py); the README's security notes weigh it.
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def strict_csp(app: Flask) -> str:
    """The policy for our pages: with S3_SERVE=redirect, images may also come from the store's origin."""
    from app.services import services

    s3 = services(app).stores.s3
    if s3 is None or not s3.serve_directly:
        return STRICT_CSP
    # An <img> that our route redirects to a presigned URL is checked against img-src at the final origin.
    return STRICT_CSP.replace("img-src 'self' data:;", f"img-src 'self' data: {s3.browser_origin()};")


def set_security_headers(response: Response) -> Response:
    """Add CSP and companions to every response."""
    dashboard = request.blueprint == "rq_dashboard"
    policy = DASHBOARD_CSP if dashboard else current_app.extensions["strict_csp"]
    response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def register(app: Flask) -> None:
    """Compute the policy once, at start-up, and install the header hook."""
    app.extensions["strict_csp"] = strict_csp(app)
    app.after_request(set_security_headers)
