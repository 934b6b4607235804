"""Every request field of Anthropic's Messages API is honoured or refused by name, per provider
(issue 31): the table in tasks/anthropic_api/fields.py, held to the official SDK's request
types, to the request checks, to the README, and to what the door does with each cell."""

import json
import typing
from pathlib import Path

import pytest
from django.test import Client

from tasks.anthropic_api import fields, protocol
from tests.conftest import API_KEY

pytestmark = pytest.mark.timeout(60)  # a field accepted by mistake would wait for a worker
README = Path(__file__).resolve().parent.parent / "README.md"
TOOL = {"name": "f", "input_schema": {"type": "object"}}
# A value of each field that asks for something (a no-op value passes everywhere).
SAMPLES = {
    "max_tokens": 5,
    "system": "Be brief.",
    "stop_sequences": ["x"],
    "stream": True,
    "metadata": {"user_id": "end-user-1"},
    "tools": [TOOL],
    "tool_choice": {"type": "any"},
    "cache_control": {"type": "ephemeral"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "service_tier": "priority",
    "container": "container_1",
    "context_management": {"edits": []},
    "diagnostics": {"trace": True},
    "inference_geo": "us",
    "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "m"}],
    "output_config": {"effort": "low"},
    "output_format": {"type": "json_schema", "schema": {"type": "object"}},
    "speed": "fast",
    "user_profile_id": "profile_1",
    "workspace_id": "wrkspc_1",
    "temperature": 0.5,
    "top_p": 0.5,
    "top_k": 5,
    "priority": 3,
}
ALONGSIDE = {"tool_choice": {"tools": [TOOL]}}
MODELS = {
    "local": "local/gemma",
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-test",
    "openai_compatible": "openai_compatible/m",
}
TEMPLATE = {
    "prompt": "{{prompt}}",
    **{name: "{{" + name + "}}" for name in ("max_tokens", "temperature", "top_p", "top_k")},
    **{name: "{{" + name + "}}" for name in ("stop", "user")},
}
BARE = {"prompt": "{{prompt}}", "max_tokens": "{{max_tokens}}"}  # max_tokens is required


def sdk_fields() -> set[str]:
    from anthropic.types import message_create_params as params

    names = set()
    for cls in (params.MessageCreateParamsStreaming, params.MessageCreateParamsNonStreaming):
        names |= set(typing.get_type_hints(cls))
    return names


def body_for(field: str, provider: str, template: dict) -> dict:
    body = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    body.update({field: SAMPLES[field], **ALONGSIDE.get(field, {})})
    if provider == "custom":  # reachable as a fallback given as a native target
        options = {"url": "http://127.0.0.1:9/x", "body_template": template}
        target = {"provider": "custom", "model": "x", "options": options}
        return {**body, "model": MODELS["local"], "fallbacks": [target]}
    return {**body, "model": MODELS[provider]}


def cells(wanted: set[str]):
    for name, (row, _) in sorted(fields.MESSAGES.items()):
        for provider, cell in zip(fields.PROVIDERS, row, strict=True):
            if cell in wanted and name in SAMPLES:
                yield name, provider


def test_the_table_names_every_request_field_of_the_official_sdk():
    assert sdk_fields() <= set(fields.MESSAGES), sdk_fields() - set(fields.MESSAGES)


def test_the_table_and_the_request_checks_know_the_same_fields():
    assert set(fields.MESSAGES) == protocol.KNOWN


def test_every_cell_of_the_table_is_honoured_or_refused():
    for name, (row, _) in fields.MESSAGES.items():
        assert len(row) == len(fields.PROVIDERS) and set(row) <= {"yes", "400", "tpl"}, name


def test_the_readme_holds_the_table():
    assert fields.markdown_table(fields.MESSAGES) in README.read_text()


@pytest.mark.parametrize("field,provider", list(cells({"400", "tpl"})), ids=lambda v: v)
def test_a_field_a_provider_cannot_honour_is_a_400_naming_it(field, provider):
    template = {"prompt": "{{prompt}}"} if field == "max_tokens" else BARE
    body = json.dumps(body_for(field, provider, template))
    response = Client(raise_request_exception=False).post(
        "/v1/messages", body, content_type="application/json", HTTP_X_API_KEY=API_KEY
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].split(":")[0].split(".")[0] in (field, *ALONGSIDE.get(field, ())), error


@pytest.mark.parametrize("field,provider", list(cells({"yes", "tpl"})), ids=lambda v: v)
def test_a_field_a_provider_honours_is_accepted(field, provider):
    """Validation alone, as the route runs it (a route call would wait for a worker)."""
    from tasks.anthropic_api.translate import task_data
    from tasks.serializers import TaskCreateSerializer

    checked = protocol.messages_request(body_for(field, provider, TEMPLATE))
    serializer = TaskCreateSerializer(data=task_data(checked))
    assert serializer.is_valid(), serializer.errors
