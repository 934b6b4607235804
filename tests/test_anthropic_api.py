"""The Anthropic door's refusals (issue 31): Anthropic's one error shape and statuses for
auth, scopes, limits, validation and unknown models; `x-api-key` as Anthropic's clients send
it. None of these requests reaches a worker."""

import json

import pytest
from django.test import Client

from tests.conftest import API_KEY
from tests.keyring import issue

pytestmark = pytest.mark.timeout(60)  # a request accepted by mistake would wait for a worker
HEADERS = {"HTTP_X_API_KEY": API_KEY, "HTTP_ANTHROPIC_VERSION": "2023-06-01"}
GOOD = {"model": "local/gemma", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def post(body, path="/v1/messages", **headers):
    headers = headers or HEADERS
    data = body if isinstance(body, str) else json.dumps(body)
    return Client().post(path, data=data, content_type="application/json", **headers)


def error_of(response, status: int, kind: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert set(body) == {"type", "error"} and set(body["error"]) == {"type", "message"}
    return body["error"]["message"]


@pytest.mark.parametrize(
    "change,named",
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, "thinking"),
        ({"container": "c1"}, "container"),
        ({"service_tier": "priority"}, "service_tier"),
        ({"temperature": 7}, "temperature"),
        ({"stop_sequences": "x"}, "stop_sequences"),
        ({"metadata": {"user_id": "u", "team": "a"}}, "metadata.team"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [{"type": "web_search_20250305", "name": "w"}]}, "tools.0.type"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "hi", "name": "x"}]}, "messages.0.name"),
        ({"unheard_of": 1}, "unheard_of"),
        ({"cache_control": {"type": "forever"}}, "cache_control"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "x": 1}]}]},
            "messages.0.content.0.x",
        ),
    ],
)
def test_a_field_we_cannot_honour_is_a_400_naming_it(change, named):
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    message = error_of(post(body), 400, "invalid_request_error")
    assert message.startswith(f"{named}:"), message


@pytest.mark.parametrize("kind", ["image", "document"])
def test_image_and_document_blocks_are_refused_by_name(kind):
    block = {"type": kind, "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
    content = [{"type": "text", "text": "what is this?"}, block]
    body = {**GOOD, "messages": [{"role": "user", "content": content}]}
    message = error_of(post(body), 400, "invalid_request_error")
    assert message.startswith("messages.0.content.1.type:") and kind in message


def test_a_body_that_is_not_json_is_a_400_in_anthropics_shape():
    assert "not valid JSON" in error_of(post("{oops"), 400, "invalid_request_error")


def test_an_unknown_model_is_a_404_not_found_error():
    message = error_of(post({**GOOD, "model": "nosuch"}), 404, "not_found_error")
    assert "nosuch" in message


def test_no_key_and_a_wrong_key_are_authentication_errors():
    error_of(post(GOOD, HTTP_ANTHROPIC_VERSION="2023-06-01"), 401, "authentication_error")
    error_of(post(GOOD, HTTP_X_API_KEY="sk-wrong-key-123456"), 401, "authentication_error")


def test_the_bearer_header_works_as_well_as_x_api_key():
    bad = {**GOOD, "max_tokens": 0}
    error_of(post(bad, HTTP_AUTHORIZATION=f"Bearer {API_KEY}"), 400, "invalid_request_error")
    error_of(post(bad), 400, "invalid_request_error")


def test_a_key_without_the_tasks_scope_is_a_permission_error():
    _, key = issue("models", name="models-only")
    message = error_of(post(GOOD, HTTP_X_API_KEY=key), 403, "permission_error")
    assert "tasks" in message


def test_a_key_over_its_rate_is_a_429_rate_limit_error():
    _, key = issue("tasks", name="one-a-minute", rpm=1)
    error_of(post({**GOOD, "max_tokens": 0}, HTTP_X_API_KEY=key), 400, "invalid_request_error")
    response = post(GOOD, HTTP_X_API_KEY=key)
    error_of(response, 429, "rate_limit_error")
    assert int(response["Retry-After"]) >= 1


def test_count_tokens_refuses_a_remote_model_by_name():
    body = {k: v for k, v in GOOD.items() if k != "max_tokens"} | {"model": "openai/gpt-4o"}
    message = error_of(post(body, "/v1/messages/count_tokens"), 400, "invalid_request_error")
    assert message.startswith("model:") and "openai" in message


def test_a_get_is_a_405_in_anthropics_shape():
    response = Client().get("/v1/messages", **HEADERS)
    error_of(response, 405, "invalid_request_error")


BATCHES = "/v1/messages/batches"


@pytest.mark.parametrize(
    "requests,named",
    [
        ([], "requests"),
        ([{"custom_id": "a"}], "requests.0"),
        ([{"custom_id": "no spaces", "params": GOOD}], "requests.0.custom_id"),
        ([{"custom_id": "a", "params": GOOD}, {"custom_id": "a", "params": GOOD}], "requests.1"),
        ([{"custom_id": "a", "params": {**GOOD, "stream": True}}], "requests.0.params.stream"),
        ([{"custom_id": "a", "params": {**GOOD, "max_tokens": 0}}], "requests.0.params.max_tokens"),
        (
            [{"custom_id": "a", "params": {**GOOD, "thinking": {"type": "enabled"}}}],
            "requests.0.params.thinking",
        ),
        ([{"custom_id": "a", "params": {**GOOD, "model": "nosuch"}}], "requests.0.params.model"),
    ],
)
def test_a_bad_message_batch_is_refused_naming_the_request_and_its_field(requests, named):
    message = error_of(post({"requests": requests}, BATCHES), 400, "invalid_request_error")
    assert message.startswith(f"{named}:") or message.startswith(f"{named}."), message


def test_an_unknown_batch_and_an_unknown_route_are_404s_in_anthropics_shape():
    client = Client(raise_request_exception=False)
    error_of(client.get(f"{BATCHES}/msgbatch_nosuch", **HEADERS), 404, "not_found_error")
    error_of(client.get(f"{BATCHES}/batch_nosuch", **HEADERS), 404, "not_found_error")
    error_of(client.get("/v1/messages/nowhere/at/all", **HEADERS), 404, "not_found_error")


def test_a_body_over_the_limit_is_a_413_in_anthropics_shape(settings):
    settings.MAX_REQUEST_BODY_BYTES = 2048
    big = {**GOOD, "system": "x" * 4096}
    error_of(post(big), 413, "request_too_large")


def test_the_results_of_a_batch_that_has_not_ended_are_a_409():
    created = post({"requests": [{"custom_id": "a", "params": GOOD}]}, BATCHES)
    assert created.status_code == 200, created.content
    batch = created.json()
    assert batch["type"] == "message_batch" and batch["processing_status"] == "in_progress"
    assert batch["request_counts"]["processing"] == 1 and batch["results_url"] is None
    response = Client().get(f"{BATCHES}/{batch['id']}/results", **HEADERS)
    assert "has not ended" in error_of(response, 409, "invalid_request_error")


def test_fallbacks_and_tools_become_the_tasks_own_by_the_same_names_as_on_v1():
    from tasks.anthropic_api.protocol import messages_request
    from tasks.anthropic_api.translate import task_data
    from tasks.serializers import TaskCreateSerializer

    tool = {"name": "f", "input_schema": {"type": "object"}}
    body = {
        **GOOD,
        "fallbacks": ["openai/gpt-4o-mini", "gemma"],
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
    }
    data = task_data(messages_request(body))
    assert data["fallback"] == [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "local", "model": "gemma"},
    ]
    assert data["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert data["parallel_tool_calls"] is False
    assert TaskCreateSerializer(data=data).is_valid()


def test_count_tokens_of_a_local_model_that_is_not_there_is_a_404():
    body = {"model": "local/nosuch", "messages": GOOD["messages"]}
    message = error_of(post(body, "/v1/messages/count_tokens"), 404, "not_found_error")
    assert "nosuch" in message
