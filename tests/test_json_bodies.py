"""Malformed and deeply nested JSON bodies answer a JSON 4xx, never a 500 or a traceback in the logs."""

from __future__ import annotations

import json
import logging

import pytest
from factories import make_token, make_user
from tests_support import bearer, csrf_for

from app.web.json_bodies import nested_deeper_than

DEPTHS = [10, 31, 32, 33, 64, 100, 500, 999, 1000, 1001, 5000, 10_000, 100_000]


def arrays(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def mixed(depth: int) -> str:
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)


BODIES: list[str | bytes] = [
    *(arrays(depth) for depth in DEPTHS),
    *('{"prompts": ' + arrays(depth, '"a"') + "}" for depth in (10, 100, 1000, 100_000)),
    *(objects(depth) for depth in (33, 1000, 100_000)),
    *(mixed(depth) for depth in (1000, 100_000)),
    "[" * 1000, "[" * 100_000, '{"a":' * 100_000,  # never closed
    '{"prompts": ["a"], "options": ' + objects(1000) + "}",
    '{"prompts": ["a"], "extra": ' + arrays(900) + "}",  # parses, but too deep to serialise again
    arrays(5000).encode("utf-16"),  # JSON's other encodings are read too
    "", "{", "[", '{"prompts": ["a"', '{"prompts": ["a"]', "nul", "NaN", '{"prompts": NaN}',
    '{"prompts": [1e400]}', '{"prompts": ["\\ud800"]}', b"\xff\xfe\xfd", b'{"prompts": ["\xff"]}',
    '\ufeff{"prompts": ["a"]', '{"prompts": ["a"]} trailing', '{"prompts": ["a"],}', "{'prompts': ['a']}",
    '{"prompts": "a"}', '{"prompts": []}', '{"prompts": ["\\u0000"]}', "null", "[]",
    '{"prompts": ["a"], "options": {"seed": 1' + "0" * 5000 + "}}",
]


@pytest.fixture
def api_client(accounts_app):
    """A script with an API token: requests go straight to the parser, no session or CSRF token involved."""
    make_user(accounts_app, "ann@example.com")
    client = accounts_app.test_client(use_cookies=False)
    client.environ_base.update({"HTTP_" + k.upper(): v
                                for k, v in bearer(make_token(accounts_app, "ann@example.com")).items()})
    return client


def post(client, body: str | bytes, content_type: str = "application/json"):
    return client.post("/api/batches", data=body, content_type=content_type)


def assert_json_4xx(response, body) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, repr(body)[:80])
    error = response.get_json()["error"]
    assert response.mimetype == "application/json" and error["code"] and error["message"], repr(body)[:80]


def test_fifty_malformed_bodies_answer_json_4xx_without_a_traceback(api_client, caplog):
    assert len(BODIES) == 50
    with caplog.at_level(logging.DEBUG):
        for body in BODIES:
            assert_json_4xx(post(api_client, body), body)
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json; charset=utf-8"])
def test_every_json_content_type_is_checked(api_client, content_type):
    response = post(api_client, arrays(100_000), content_type)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"


def test_one_level_past_the_limit_is_refused_saying_so(api_client):
    assert post(api_client, arrays(32)).status_code == 422  # read, and then found to be no batch
    refused = post(api_client, arrays(33))
    assert refused.status_code == 400
    assert refused.get_json()["error"] == {
        "code": "bad_request", "message": "The JSON body nests arrays or objects more than 32 deep.",
        "fields": {"body": "Nest arrays and objects at most 32 deep."}}


def test_brackets_inside_strings_are_text_not_nesting(api_client):
    prompt = "[" * 200 + '\\" {' * 100 + "a lighthouse" + "]" * 200
    response = post(api_client, json.dumps({"prompts": [prompt]}))
    assert response.status_code == 201 and response.get_json()["generations"][0]["prompt"] == prompt


def test_a_recursion_error_in_the_parser_is_a_400_too(make_app, caplog):
    app = make_app(JSON_MAX_DEPTH=10**7)  # the check let through: the parser itself gives up
    client = app.test_client(use_cookies=False)
    with caplog.at_level(logging.DEBUG):
        response = post(client, arrays(100_000))
        assert response.status_code == 400
        assert response.get_json()["error"]["message"] == "The request body is not valid JSON."
        with app.test_request_context("/api/batches", method="POST", data=arrays(100_000),
                                      content_type="application/json"):
            from flask import request

            assert request.get_json(silent=True) is None  # what the idempotency fingerprint reads
            with pytest.raises(ValueError, match="too deep"):
                app.json.loads(arrays(100_000))
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]


def test_pages_take_forms_not_json(client, caplog):
    token = csrf_for(client)
    with caplog.at_level(logging.DEBUG):
        for body in ("[1, 2]", '"a"', '{"prompts-0": {"x": 1}}', arrays(100_000), '{"prompts-0": "a cat"}'):
            response = client.post("/", data=body, content_type="application/json", headers={"X-CSRFToken": token})
            assert response.status_code == 415 and "form data" in response.get_data(as_text=True)
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(("text", "limit", "deeper"), [
    ("[]", 1, False), ("[[]]", 1, True), (arrays(32), 32, False), (arrays(33), 32, True),
    ('{"a": [{"b": [1]}]}', 4, False), ('{"a": [{"b": [1]}]}', 3, True),
    ('["[[[[", "]]]]"]', 1, False), ('["\\"[[[["]', 1, False), ('["\\\\", [[1]]]', 2, True),
    ("[]" * 100_000, 1, False), ("[" * 100, 99, True), ('"[[[[' + "[" * 100, 1, True),
])
def test_the_depth_is_counted_outside_strings(text, limit, deeper):
    assert nested_deeper_than(text.encode(), limit) is deeper


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32-le"])
def test_the_depth_is_counted_in_every_encoding_json_reads(encoding):
    assert nested_deeper_than(arrays(33).encode(encoding), 32)
    assert not nested_deeper_than(json.dumps({"prompts": ["[" * 40 + "é"]}, ensure_ascii=False).encode(encoding), 32)
