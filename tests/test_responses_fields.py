"""Every request field of OpenAI's Responses API is honoured or refused by name, per provider
(issue 30): tasks/responses/fields.py, held to the official SDK, to the README and to what
the door does with each cell."""

import json
from pathlib import Path

import pytest
from django.test import Client

from tasks.field_support import PROVIDERS, markdown_table
from tasks.responses.fields import RESPONSES
from tests.conftest import API_KEY

pytestmark = pytest.mark.timeout(60)  # a field accepted by mistake would wait for a worker
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
README = Path(__file__).resolve().parent.parent / "README.md"
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}
# A value of each field that asks for something (a no-op value passes everywhere).
SAMPLES = {
    "instructions": "Be brief.",
    "max_output_tokens": 5,
    "temperature": 0.5,
    "top_p": 0.5,
    "tools": [TOOL],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "text": {"format": {"type": "json_object"}},
    "stream": True,
    "stream_options": {"include_obfuscation": False},
    "background": True,
    "store": True,
    "metadata": {"team": "a"},
    "user": "end-user-1",
    "safety_identifier": "end-user-1",
    "include": ["reasoning.encrypted_content"],
    "truncation": "auto",
    "service_tier": "flex",
    "top_logprobs": 2,
    "reasoning": {"effort": "low"},
    "max_tool_calls": 2,
    "conversation": "conv_1",
    "prompt": {"id": "pmpt_1"},
    "prompt_cache_key": "k",
    "prompt_cache_options": {"ttl": "30m"},
    "prompt_cache_retention": "24h",
    "context_management": [{"type": "compaction"}],
    "background_options": {},
    "moderation": {"model": "omni-moderation-latest"},
    "image": {},
    "access_programs": ["x"],
}
ALONGSIDE = {
    "stream_options": {"stream": True},
    "tool_choice": {"tools": [TOOL]},
    "parallel_tool_calls": {"tools": [TOOL]},
}
MODELS = {
    "local": "gemma",
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-test",
    "openai_compatible": "openai_compatible/m",
}
BARE = {"prompt": "{{prompt}}"}
EVERY_PLACEHOLDER = {
    "prompt": "{{prompt}}",
    **{name: "{{" + name + "}}" for name in ("max_tokens", "temperature", "top_p", "user")},
}


def sdk_fields() -> set[str]:
    from openai.types.responses.response_create_params import (
        ResponseCreateParamsNonStreaming,
        ResponseCreateParamsStreaming,
    )

    names = set()
    for kind in (ResponseCreateParamsNonStreaming, ResponseCreateParamsStreaming):
        for cls in kind.__mro__:
            names |= set(getattr(cls, "__annotations__", {}))
    return names


def body_for(field: str, provider: str, template: dict) -> dict:
    body = {"input": "hi", field: SAMPLES[field], **ALONGSIDE.get(field, {})}
    if provider == "custom":  # reachable from /v1 as a fallback given as a native target
        options = {"url": "http://127.0.0.1:9/x", "body_template": template}
        target = {"provider": "custom", "model": "x", "options": options}
        return {**body, "model": MODELS["local"], "fallbacks": [target]}
    return {**body, "model": MODELS[provider]}


def cells(wanted: set[str]):
    for name, (row, _) in sorted(RESPONSES.items()):
        for provider, cell in zip(PROVIDERS, row, strict=True):
            if cell in wanted and name in SAMPLES:
                yield name, provider


def post(body: dict):
    client = Client(raise_request_exception=False)
    return client.post("/v1/responses", json.dumps(body), content_type="application/json", **AUTH)


def accepted(body: dict) -> dict:
    """Validation alone, as the route runs it (a route call would wait for a worker)."""
    from tasks.openai.serving.translate import task_data
    from tasks.responses.items import messages_of
    from tasks.responses.protocol import chat_body, response_request
    from tasks.serializers import TaskCreateSerializer

    request = response_request(body)
    messages = messages_of(request["input"], request.get("instructions"))
    serializer = TaskCreateSerializer(data=task_data(chat_body(request, messages), chat=True))
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


def test_the_table_names_every_request_field_of_the_official_sdk():
    ignored = {"extra_headers", "extra_query", "extra_body", "timeout"}
    assert sdk_fields() - ignored <= set(RESPONSES), sdk_fields() - set(RESPONSES)


def test_every_cell_of_the_table_is_honoured_or_refused():
    for name, (row, _) in RESPONSES.items():
        assert len(row) == len(PROVIDERS) and set(row) <= {"yes", "400", "tpl"}, name


def test_the_readme_holds_the_table():
    assert markdown_table(RESPONSES) in README.read_text()


@pytest.mark.parametrize("field,provider", list(cells({"400", "tpl"})), ids=lambda v: v)
def test_a_responses_field_a_provider_cannot_honour_is_a_400_naming_it(field, provider):
    response = post(body_for(field, provider, BARE))
    assert response.status_code == 400, response.content
    param = response.json()["error"]["param"]
    assert param.split(".")[0] in (field, *ALONGSIDE.get(field, ())), response.json()


@pytest.mark.parametrize("field,provider", list(cells({"yes", "tpl"})), ids=lambda v: v)
def test_a_responses_field_a_provider_honours_is_accepted(field, provider):
    accepted(body_for(field, provider, EVERY_PLACEHOLDER))


MISHANDLED = [
    ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input"),
    ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools"),
    ({"input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text"),
    ({"input": "hi", "background": True, "store": False}, "background"),
    ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "hi", "seed": 3}, "seed"),  # the model is openai's: its Responses API has none
    ({"input": "hi", "previous_response_id": "resp_nope"}, None),
]


@pytest.mark.parametrize("body,param", MISHANDLED, ids=repr)
def test_what_a_responses_request_cannot_get_is_refused_naming_it(body, param):
    response = post({"model": "openai/gpt-4o-mini", **body})
    if param is None:  # an unknown previous response: a 404 like another tenant's
        assert response.status_code == 404, response.content
        return
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"].split(".")[0] == param, response.json()


def test_max_output_tokens_is_the_task_s_max_tokens():
    data = accepted({"model": "openai/m", "input": "hi", "max_output_tokens": 7})
    assert data["params"]["max_tokens"] == 7
