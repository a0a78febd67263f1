"""The OpenAPI document (written by flask-smorest from the schemas that validate requests) and /api/docs."""

import re
from pathlib import Path

from app.api.schemas import NOT_BLANK, STORABLE_TEXT
from app.text.storable import UNSAFE

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = {
    ("get", "/api/me"), ("delete", "/api/me"), ("get", "/api/export"),
    ("get", "/api/batches"), ("post", "/api/batches"), ("get", "/api/batches/{batch_id}"),
    ("post", "/api/batches/{batch_id}/cancel"), ("get", "/api/images"), ("get", "/api/images/{generation_id}"),
    ("delete", "/api/images/{generation_id}"), ("post", "/api/generations/{generation_id}/cancel"),
    ("post", "/api/generations/{generation_id}/retry"), ("post", "/api/images/{generation_id}/edits"),
    ("post", "/api/edits"),
    ("post", "/api/uploads"),
    ("post", "/api/generations/{generation_id}/retry"),
    ("post", "/api/batches/preview"), ("get", "/api/wildcards"), ("post", "/api/wildcards"),
    ("get", "/api/wildcards/{list_id}"), ("put", "/api/wildcards/{list_id}"), ("delete", "/api/wildcards/{list_id}"),
    # Stars, ratings, collections and share links (issue 24).
    ("put", "/api/images/{generation_id}/star"), ("delete", "/api/images/{generation_id}/star"),
    ("put", "/api/images/{generation_id}/rating"), ("delete", "/api/images/{generation_id}/rating"),
    ("get", "/api/collections"), ("post", "/api/collections"), ("get", "/api/collections/{collection_id}"),
    ("patch", "/api/collections/{collection_id}"), ("delete", "/api/collections/{collection_id}"),
    ("post", "/api/collections/{collection_id}/images"), ("delete", "/api/collections/{collection_id}/images"),
    ("post", "/api/share-links"), ("get", "/api/share-links"), ("delete", "/api/share-links/{link_id}"),
    ("post", "/api/webhooks"), ("get", "/api/webhooks"), ("delete", "/api/webhooks/{webhook_id}"),
    ("get", "/api/webhooks/{webhook_id}/deliveries"),
}


def test_the_document_is_openapi_3_1_and_describes_every_endpoint(client):
    document = client.get("/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    found = {(method, path) for path, item in document["paths"].items() for method in item if method != "parameters"}
    assert found == OPERATIONS
    request = document["components"]["schemas"]["BatchRequest"]
    assert request["additionalProperties"] is False and request["required"] == ["prompts"]
    assert request["properties"]["model"]["enum"][:2] == ["core", "ultra"]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "A personal access token, igk_…"}
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]


def test_the_document_states_this_installations_batch_size(make_app):
    document = make_app(MAX_PROMPTS_PER_BATCH=25).test_client().get("/api/openapi.json").get_json()
    prompts = document["components"]["schemas"]["BatchRequest"]["properties"]["prompts"]
    assert prompts["maxContains"] == 25 and prompts["minContains"] == 1 and "maxItems" not in prompts


def test_tokens_are_required_in_the_document_only_where_they_are(accounts_app, client):
    assert accounts_app.test_client().get("/api/openapi.json").get_json()["security"] == [{"bearerAuth": []}]
    assert client.get("/api/openapi.json").get_json()["security"] == [{}, {"bearerAuth": []}]


def test_the_documents_text_patterns_are_the_one_check_of_typed_text():
    storable, not_blank = re.compile(STORABLE_TEXT), re.compile(NOT_BLANK)
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        assert bool(storable.match(f"a{char}b")) is (UNSAFE.search(char) is None), hex(code)
        assert bool(not_blank.match(char)) is (UNSAFE.search(char) is None and bool(char.strip())), hex(code)


def test_the_document_and_the_docs_page_are_public(accounts_app):
    client = accounts_app.test_client()
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_the_docs_page_runs_the_vendored_viewer_under_the_strict_policy(client):
    response = client.get("/api/docs")
    html = response.get_data(as_text=True)
    assert "script-src 'self'; style-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js" defer></script>' in html
    assert '<script src="/static/js/api-docs.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "style=" not in html and "<style" not in html
    assert 'data-url="/api/openapi.json"' in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_swagger_ui_is_vendored_unmodified_with_its_licence_and_version():
    vendor = ROOT / "static" / "vendor" / "swagger-ui"
    version = (vendor / "VERSION").read_text()
    assert "swagger-ui-dist 5.35.0" in version
    assert "Apache License" in (vendor / "LICENSE").read_text() and (vendor / "NOTICE").exists()
    import hashlib

    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        assert f"{name} sha256: {digest}" in version
