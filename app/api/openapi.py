"""flask-smorest wired into this app: one Api per app, its document written from the marshmallow schemas."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Request
from flask_smorest import Api, Blueprint
from marshmallow import RAISE
from marshmallow.fields import Field
from webargs.flaskparser import FlaskParser

from app.api.schemas import EXTRA_JSON_SCHEMA, SCHEMA_EXTRAS, SETTING_LIMITS, ErrorSchema

SECURITY_SCHEME = "bearerAuth"


class JsonApi(Api):
    """flask-smorest's Api documenting our error shape, leaving the error handling itself to app/web/errors.py."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """Register nothing: app/web/errors.py answers every error, in this API's JSON under /api/."""


class JsonParser(FlaskParser):
    """webargs' parser, where whatever the JSON parser gives up on is invalid JSON (a 400), never a 500, and a query
    parameter the document does not offer is refused (422), as an unknown body field is, never silently ignored."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE, "querystring": RAISE}

    def _raw_load_json(self, req: Request) -> Any:  # noqa: ANN401
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:  # nested too deep; an integer of over 4,300 digits
            # With a doc, for webargs reads an empty one as "no body sent".
            raise json.JSONDecodeError(f"unreadable JSON ({type(exc).__name__})", doc="?", pos=0) from None


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint reading request bodies with JsonParser."""

    ARGUMENTS_PARSER = JsonParser()



def _extra_schema(config: Mapping[str, Any]) -> Callable[..., dict[str, Any]]:
    """An apispec attribute function: JSON Schema it has no field for, and limits that are settings."""

    def attributes(_converter: object, field: Field, **_kwargs: Any) -> dict[str, Any]:  # noqa: ANN401
        extra = dict(field.metadata.get(EXTRA_JSON_SCHEMA, {}))
        for keyword, setting in field.metadata.get(SETTING_LIMITS, {}).items():
            extra[keyword] = config[setting]
        return extra

    return attributes


def _security(auth_mode: str) -> list[dict[str, list[str]]]:
    """Tokens are required in accounts mode and optional (ignored) in AUTH_MODE=none: the document says which."""
    required = [{SECURITY_SCHEME: []}]
    return required if auth_mode == "accounts" else [{}, *required]


def init_api(app: Flask, blueprint: Any) -> JsonApi:  # noqa: ANN401
    """Make this app's Api and register the API blueprint with it (which documents every view)."""
    app.config["API_SPEC_OPTIONS"] = {
        "security": _security(app.config["AUTH_MODE"]),
        "info": {"description": "Submit batches of prompts, follow them, and fetch the images. Send "
                                "`Authorization: Bearer igk_…` with a token made on /account/tokens. Errors are "
                                '`{"error": {"code", "message", "fields"?}}`.'},
    }
    api = JsonApi(app)
    api.ma_plugin.converter.add_attribute_function(_extra_schema(app.config))
    api.spec.components.security_scheme(SECURITY_SCHEME, {"type": "http", "scheme": "bearer",
                                                          "description": "A personal access token, igk_…"})
    api.register_blueprint(blueprint)
    for name, extra in SCHEMA_EXTRAS.items():
        api.spec.components.schemas[name].update(extra)
    return api


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of this app's API."""
    api: JsonApi = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api.spec.to_dict()
