"""Bad input is a 400 that names what is wrong, on the native API and /v1 alike (issue 16)."""

import json

import pytest
from django.test import Client

from tests.conftest import API_KEY

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
NATIVE = {"provider": "openai_compatible", "model": "m", "prompt": "hi"}
OPENAI_CHAT = {"model": "openai_compatible/m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def http() -> Client:
    return Client(raise_request_exception=False)


def post(http: Client, url: str, raw: str | bytes, **headers):
    return http.post(url, raw, content_type="application/json", **AUTH, **headers)


def native(**extra) -> dict:
    return {**NATIVE, "options": {"base_url": "http://127.0.0.1:9/v1"}, **extra}


def native_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def openai_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_non_finite_number_anywhere_in_a_native_body_is_a_400(http, number):
    raw = json.dumps(native(metadata={"a": [1, "PLACE"]})).replace('"PLACE"', number)
    error = native_error(post(http, "/api/v1/tasks", raw))
    assert error["code"] == "invalid_json" and "JSON parse error" in error["message"]


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_non_finite_number_anywhere_in_an_openai_body_is_a_400(http, number):
    raw = json.dumps({**OPENAI_CHAT, "metadata": {"a": "PLACE"}}).replace('"PLACE"', number)
    error = openai_error(post(http, "/v1/chat/completions", raw))
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/api/v1/grammars/check", "/v1/completions"])
def test_json_nested_tens_of_thousands_deep_is_a_400_not_a_crash(http, url):
    response = post(http, url, '{"a": ' * 30_000 + "1" + "}" * 30_000)
    assert response.status_code == 400, response.content
    assert "nested deeper than 64" in response.content.decode()


def test_nesting_within_the_limit_and_brackets_inside_strings_are_accepted(http):
    deep = "[" * 60 + '"[[[{{{"' + "]" * 60
    raw = json.dumps(native(metadata={"deep": "PLACE"})).replace('"PLACE"', deep)
    response = post(http, "/api/v1/tasks", raw)
    assert response.status_code == 202, response.content
    task = http.get(f"/api/v1/tasks/{response.json()['task_id']}", **AUTH).json()
    assert task["metadata"]["deep"][0][0][0]


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/v1/chat/completions"])
def test_a_lone_surrogate_in_a_string_is_a_400(http, url):
    raw = json.dumps(native(metadata={"a": "x"})).replace('"x"', '"\\ud800"')
    assert post(http, url, raw).status_code == 400


def test_a_body_that_is_not_utf8_is_a_400(http):
    assert post(http, "/api/v1/tasks", b'{"prompt": "\xff"}').status_code == 400
