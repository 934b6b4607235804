"""What cannot be enforced by construction is refused at submit, for tools as for
response_format, on the native door and /v1 alike (issue 25, item 6)."""

import json

import pytest
from django.test import Client

from tests.conftest import API_KEY
from tests.test_structured import UNCOMPILABLE_ONE_OF

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
ASK = [{"role": "user", "content": "hi"}]
UNIQUE = {"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}}
BAD_REF = {"type": "object", "properties": {"a": {"$ref": "#/$defs/nowhere"}}}
SELF = {"$ref": "#"}
LOOP = {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}
UNENFORCEABLE = {
    "uniqueItems": UNIQUE,
    "overlapping_oneOf": UNCOMPILABLE_ONE_OF,
    "bad_ref": BAD_REF,
    "self_ref": SELF,
    "ref_loop": LOOP,
}
TREE = {
    "type": "object",
    "properties": {"kids": {"type": "array", "items": {"$ref": "#"}, "maxItems": 2}},
    "required": ["kids"],
}


@pytest.fixture
def http() -> Client:
    return Client(raise_request_exception=False)


def tools(schema: dict) -> list[dict]:
    ok = {"type": "function", "function": {"name": "ok", "parameters": {"type": "object"}}}
    return [ok, {"type": "function", "function": {"name": "bad", "parameters": schema}}]


def post(http, url: str, body: dict):
    return http.post(url, json.dumps(body), content_type="application/json", **AUTH)


@pytest.mark.parametrize("case", UNENFORCEABLE)
def test_a_tool_schema_that_cannot_be_enforced_is_a_400_naming_the_tool_natively(http, case):
    body = {
        "provider": "local",
        "model": "gemma",
        "messages": ASK,
        "tools": tools(UNENFORCEABLE[case]),
    }
    response = post(http, "/api/v1/tasks", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == "tools.1.function.parameters"


@pytest.mark.parametrize("case", UNENFORCEABLE)
def test_a_tool_schema_that_cannot_be_enforced_is_a_400_naming_the_tool_on_v1(http, case):
    body = {"model": "gemma", "messages": ASK, "tools": tools(UNENFORCEABLE[case])}
    response = post(http, "/v1/chat/completions", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["type"]) == (
        "tools.1.function.parameters",
        "invalid_request_error",
    )


@pytest.mark.parametrize("schema", [SELF, LOOP], ids=["self_ref", "ref_loop"])
@pytest.mark.parametrize("provider", ["local", "openai_compatible"])
def test_a_schema_no_finite_value_fits_is_a_400_as_a_response_format_too(http, provider, schema):
    body = {
        "provider": provider,
        "model": "gemma" if provider == "local" else "m",
        "options": {} if provider == "local" else {"base_url": "http://127.0.0.1:9/v1"},
        "prompt": "x",
        "response_format": {"type": "json_schema", "json_schema": {"schema": schema}},
    }
    response = post(http, "/api/v1/tasks", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "response_format.json_schema.schema"
    assert "refers to itself" in error["message"]


def test_a_recursive_schema_that_reads_a_part_each_step_is_accepted(http):
    body = {"provider": "local", "model": "gemma", "messages": ASK, "tools": tools(TREE)}
    assert post(http, "/api/v1/tasks", body).status_code == 202


def test_tools_beside_a_json_format_are_accepted_for_the_local_model(http):
    body = {
        "provider": "local",
        "model": "gemma",
        "messages": ASK,
        "tools": tools(TREE),
        "response_format": {"type": "json_schema", "json_schema": {"schema": TREE}},
    }
    assert post(http, "/api/v1/tasks", body).status_code == 202


def test_tools_beside_a_gbnf_grammar_are_still_refused_for_the_local_model(http):
    body = {
        "provider": "local",
        "model": "gemma",
        "messages": ASK,
        "tools": tools(TREE),
        "response_format": {"type": "grammar", "name": "yes_no"},
    }
    response = post(http, "/api/v1/tasks", body)
    assert response.status_code == 400 and response.json()["error"]["field"] == "response_format"


def test_a_remote_target_s_tool_schema_is_refused_only_when_no_value_fits_it(http):
    odd = {"type": "object", "properties": {"a": {"type": "string", "format": "vendor-thing"}}}
    body = {
        "provider": "openai_compatible",
        "model": "m",
        "options": {"base_url": "http://127.0.0.1:9/v1"},
        "messages": ASK,
    }
    assert post(http, "/api/v1/tasks", {**body, "tools": tools(odd)}).status_code == 202
    response = post(http, "/api/v1/tasks", {**body, "tools": tools(SELF)})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "tools.1.function.parameters"
