"""/api/openapi.json, written by flask-smorest from the schemas, and /api/docs, the vendored Swagger UI on it."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from werkzeug.wrappers import Response

from app.api.openapi import document

bp = Blueprint("api_docs", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document (public: it describes the API, it opens nothing)."""
    return jsonify(document(current_app._get_current_object()))  # type: ignore[attr-defined]


@bp.get("/docs")
def page() -> str:
    """The API reference, rendered in the browser from openapi.json."""
    return render_template("api/docs.html")
