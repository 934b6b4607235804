"""Every request field of OpenAI's reference is honoured or refused by name, per provider (issue
18): the table in tasks/openai/protocol/fields.py, held to the official SDK's request types, to the
README, and to what the service does with each cell."""

import json
from pathlib import Path

import pytest
from django.test import Client

from tasks.openai.protocol import fields
from tests.conftest import API_KEY

pytestmark = pytest.mark.timeout(60)  # a field accepted by mistake would wait for a worker
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
README = Path(__file__).resolve().parent.parent / "README.md"
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
# A value of each field that asks for something (a no-op value passes everywhere).
SAMPLES = {
    "max_tokens": 5,
    "max_completion_tokens": 5,
    "temperature": 0.5,
    "top_p": 0.5,
    "seed": 3,
    "stop": ["x"],
    "presence_penalty": 0.5,
    "frequency_penalty": 0.5,
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "end-user-1",
    "safety_identifier": "end-user-1",
    "metadata": {"team": "a"},
    "response_format": {"type": "json_object"},
    "logit_bias": {"1": 1},
    "n": 2,
    "logprobs": True,
    "top_logprobs": 2,
    "tools": [TOOL],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "low",
    "verbosity": "low",
    "web_search_options": {},
    "service_tier": "flex",
    "store": True,
    "prompt_cache_key": "k",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"ttl": "30m"},
    "moderation": {"model": "omni-moderation-latest"},
    "top_k": 5,
    "repeat_penalty": 1.3,
    "best_of": 2,
    "echo": True,
    "suffix": "x",
}
COMPLETION_SAMPLES = {"logprobs": 2}
# Needed beside a sample for it to be valid at all.
ALONGSIDE = {
    "stream_options": {"stream": True},
    "top_logprobs": {"logprobs": True},
    "tool_choice": {"tools": [TOOL]},
    "parallel_tool_calls": {"tools": [TOOL]},
}
MODELS = {
    "local": "gemma",
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-test",
    "openai_compatible": "openai_compatible/m",
}
EVERY_PLACEHOLDER = {
    "prompt": "{{prompt}}",
    **{name: "{{" + name + "}}" for name in ("max_tokens", "temperature", "top_p", "seed")},
    **{name: "{{" + name + "}}" for name in ("stop", "top_k", "user")},
}

BARE = {"prompt": "{{prompt}}"}


def sdk_fields(chat: bool) -> set[str]:
    if chat:
        from openai.types.chat.completion_create_params import CompletionCreateParamsBase
    else:
        from openai.types.completion_create_params import CompletionCreateParamsBase
    names = set()
    for cls in CompletionCreateParamsBase.__mro__:
        names |= set(getattr(cls, "__annotations__", {}))
    return names


def body_for(field: str, provider: str, chat: bool, template: dict | None = None) -> dict:
    sample = (COMPLETION_SAMPLES if not chat and field in COMPLETION_SAMPLES else SAMPLES)[field]
    body = {field: sample, **ALONGSIDE.get(field, {})}
    if chat:
        body["messages"] = [{"role": "user", "content": "hi"}]
    else:
        body["prompt"] = "hi"
    if provider == "custom":  # reachable from /v1 as a fallback given as a native target
        options = {"url": "http://127.0.0.1:9/x", "body_template": template}
        target = {"provider": "custom", "model": "x", "options": options}
        return {**body, "model": MODELS["local"], "fallbacks": [target]}
    return {**body, "model": MODELS[provider]}


def cells(table: dict, wanted: set[str]):
    for name, (row, _) in sorted(table.items()):
        for provider, cell in zip(fields.PROVIDERS, row, strict=True):
            if cell in wanted and name in SAMPLES:
                yield name, provider


def post(body: dict, chat: bool):
    url = "/v1/chat/completions" if chat else "/v1/completions"
    client = Client(raise_request_exception=False)
    return client.post(url, json.dumps(body), content_type="application/json", **AUTH)


def named(response) -> str:
    return response.json()["error"]["param"].split(".")[0]


def accepted(body: dict, chat: bool) -> dict:
    """Validation alone, as the route runs it (a route call would wait for a worker)."""
    from tasks.openai.protocol.requests import openai_request
    from tasks.openai.serving.translate import task_data
    from tasks.serializers import TaskCreateSerializer

    serializer = TaskCreateSerializer(data=task_data(openai_request(body, chat=chat), chat=chat))
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
def test_the_table_names_every_request_field_of_the_official_sdk(chat):
    table = fields.CHAT if chat else fields.COMPLETIONS
    ignored = {"extra_headers", "extra_query", "extra_body", "timeout"}
    assert sdk_fields(chat) - ignored <= set(table), sdk_fields(chat) - set(table)


def test_every_cell_of_the_table_is_honoured_or_refused():
    for table in (fields.CHAT, fields.COMPLETIONS):
        for name, (row, _) in table.items():
            assert len(row) == len(fields.PROVIDERS) and set(row) <= {"yes", "400", "tpl"}, name


def test_the_readme_holds_the_table():
    readme = README.read_text()
    assert fields.markdown_table(fields.CHAT) in readme
    assert fields.markdown_table(fields.COMPLETIONS) in readme


CHAT_REFUSED = list(cells(fields.CHAT, {"400", "tpl"}))
COMPLETION_REFUSED = list(cells(fields.COMPLETIONS, {"400", "tpl"}))


@pytest.mark.parametrize("field,provider", CHAT_REFUSED, ids=lambda v: v)
def test_a_chat_field_a_provider_cannot_honour_is_a_400_naming_it(field, provider):
    response = post(body_for(field, provider, chat=True, template=BARE), chat=True)
    assert response.status_code == 400, response.content
    assert named(response) in (field, *ALONGSIDE.get(field, ())), response.json()


@pytest.mark.parametrize("field,provider", COMPLETION_REFUSED, ids=lambda v: v)
def test_a_completions_field_a_provider_cannot_honour_is_a_400_naming_it(field, provider):
    response = post(body_for(field, provider, chat=False, template=BARE), chat=False)
    assert response.status_code == 400, response.content
    assert named(response) == field, response.json()


@pytest.mark.parametrize(
    "field,provider", list(cells(fields.CHAT, {"yes", "tpl"})), ids=lambda v: v
)
def test_a_chat_field_a_provider_honours_is_accepted(field, provider):
    accepted(body_for(field, provider, chat=True, template=EVERY_PLACEHOLDER), chat=True)


@pytest.mark.parametrize(
    "field,provider", list(cells(fields.COMPLETIONS, {"yes", "tpl"})), ids=lambda v: v
)
def test_a_completions_field_a_provider_honours_is_accepted(field, provider):
    accepted(body_for(field, provider, chat=False, template=EVERY_PLACEHOLDER), chat=False)


CHAT_MESSAGE = [{"role": "user", "content": "hi"}]
MISHANDLED_ONCE = [
    ({"prompt": ["a", "b"]}, False, "prompt"),
    ({"prompt": [1, 2, 3]}, False, "prompt"),
    ({"prompt": [[1, 2, 3]]}, False, "prompt"),
    (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        True,
        "messages",
    ),
    ({"messages": CHAT_MESSAGE, "response_format": "json_object"}, True, "response_format"),
    ({"messages": CHAT_MESSAGE, "fallbacks": [5]}, True, "fallbacks"),
    ({"messages": CHAT_MESSAGE, "max_completion_tokens": 0}, True, "max_completion_tokens"),
    ({"messages": CHAT_MESSAGE, "stream_options": {"include_usage": True}}, True, "stream_options"),
    (
        {"messages": CHAT_MESSAGE, "fallback": ["openai/a"], "fallbacks": ["openai/b"]},
        True,
        "fallbacks",
    ),
    (
        {"messages": CHAT_MESSAGE, "user": "a", "safety_identifier": "b"},
        True,
        "safety_identifier",
    ),
]


@pytest.mark.parametrize("body,chat,param", MISHANDLED_ONCE, ids=repr)
def test_what_was_once_silently_mishandled_is_a_400_naming_it(body, chat, param):
    response = post({"model": "openai/gpt-4o-mini", **body}, chat=chat)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"].split(".")[0] == param, response.json()


def test_max_completion_tokens_is_the_task_s_max_tokens():
    data = accepted(
        {"model": "openai/m", "messages": CHAT_MESSAGE, "max_completion_tokens": 7}, True
    )
    assert data["params"]["max_tokens"] == 7


def test_user_and_its_newer_name_reach_the_task():
    for name in ("user", "safety_identifier"):
        data = accepted({"model": "openai/m", "messages": CHAT_MESSAGE, name: "u-7"}, True)
        assert data["user"] == "u-7"


CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
OBJECT = {"type": "object"}
NESTED_SAMPLES = {
    "messages[].name": {"messages": [{"role": "user", "content": "hi", "name": "bob"}]},
    "messages[].content[]": {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    },
    "messages[].tool_call_id": {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "content": "1", "tool_call_id": "c1"},
        ],
        "tools": [TOOL],
    },
    "response_format.json_schema.description": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "description": "an answer", "schema": OBJECT},
        }
    },
    "response_format.json_schema.strict": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"schema": OBJECT, "strict": False},
        }
    },
    "response_format.schema": {"response_format": {"type": "json_object", "schema": OBJECT}},
    "tools[].function.parameters": {"tools": [TOOL]},
}
NESTED = [name for name in fields.CHAT if "." in name or "[]" in name]


def test_every_nested_row_of_the_table_has_a_sample():
    assert set(NESTED) == set(NESTED_SAMPLES)


@pytest.mark.parametrize("field", NESTED)
def test_a_nested_field_is_honoured_or_refused_on_the_local_model_as_the_table_says(field):
    body = {"model": MODELS["local"], "messages": CHAT_MESSAGE, **NESTED_SAMPLES[field]}
    if fields.CHAT[field][0][0] == "yes":
        accepted(body, chat=True)
        return
    response = post(body, chat=True)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"].endswith(field.rsplit(".", 1)[-1].strip("[]"))
