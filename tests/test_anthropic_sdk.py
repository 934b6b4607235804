"""Anthropic's Messages API driven by the official `anthropic` SDK against real processes:
daphne, the GPU worker and the real model (issue 31)."""

import anthropic
import jsonschema
import pytest
import requests

from tests.conftest import API_KEY
from tests.fakes.servers import FakeServer, Reply, anthropic_message
from tests.keyring import issue

pytestmark = pytest.mark.slow
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOL = {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER}
ASK = [{"role": "user", "content": "The three primary colours are"}]
GREEDY = {"temperature": 0, "top_k": 1}  # ours beside Anthropic's: the local model samples
PROVIDER_KEY = "sk-ant-provider-secret-789"


@pytest.fixture
def client(processes) -> anthropic.Anthropic:
    base = processes.web()
    processes.worker("gpu", gpu=True, LLAMA_THREADS="1")
    return anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0, timeout=120)


def create(client, **kw):
    kw = {"model": "local/gemma", "messages": ASK, "max_tokens": 8, **kw}
    return client.messages.create(extra_body=GREEDY, **kw)


def test_a_message_on_the_local_model_comes_back_in_anthropics_shape(client):
    message = create(client, system=[{"type": "text", "text": "Answer briefly."}])
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "local/gemma" and message.id.startswith("msg_")
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 8


def test_the_stream_relays_the_same_text_as_a_whole_answer(client):
    whole = create(client, max_tokens=12).content[0].text
    with client.messages.stream(
        model="local/gemma", messages=ASK, max_tokens=12, extra_body=GREEDY
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == whole == final.content[0].text
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens > 0


def test_the_raw_stream_sends_anthropics_events_in_order(client):
    events = [e.type for e in create(client, stream=True)]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[2:-3]) == {"content_block_delta"}


def test_a_tool_round_trip_on_the_local_model(client):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = create(client, messages=ask, max_tokens=60, tools=[TOOL], tool_choice={"type": "any"})
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather"
    jsonschema.validate(call.input, WEATHER)  # valid by construction
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}
    history = [*ask, {"role": "assistant", "content": first.content}]
    second = create(
        client,
        messages=[*history, {"role": "user", "content": [result]}],
        max_tokens=20,
        tools=[TOOL],
        tool_choice={"type": "none"},
    )
    assert second.content[0].type == "text" and second.stop_reason in ("end_turn", "max_tokens")


def test_a_streamed_tool_call_arrives_as_input_json(client):
    with client.messages.stream(
        model="local/gemma",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        max_tokens=60,
        tools=[TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        extra_body=GREEDY,
    ) as stream:
        final = stream.get_final_message()
    call = final.content[-1]
    assert call.type == "tool_use" and final.stop_reason == "tool_use"
    jsonschema.validate(call.input, WEATHER)


def test_count_tokens_counts_what_the_model_will_read(client):
    counted = client.messages.count_tokens(model="local/gemma", messages=ASK).input_tokens
    used = create(client).usage.input_tokens
    assert counted == used > 0
    with_tools = client.messages.count_tokens(model="local/gemma", messages=ASK, tools=[TOOL])
    assert with_tools.input_tokens > counted


def test_a_field_we_cannot_honour_is_a_400_naming_it(client):
    with pytest.raises(anthropic.BadRequestError) as refused:
        create(client, thinking={"type": "enabled", "budget_tokens": 1024})
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert refused.value.body["error"]["message"].startswith("thinking:")


@pytest.fixture
def vendor():
    with FakeServer() as fake:
        fake.reply(Reply(200, anthropic_message("Paris")))
        yield fake


def test_a_remote_model_answers_and_only_the_provider_key_reaches_the_vendor(processes, vendor):
    env = {"ANTHROPIC_BASE_URL": vendor.url, "ANTHROPIC_API_KEY": PROVIDER_KEY}
    base = processes.web(**env)
    processes.worker("remote", **env)
    client = anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0, timeout=60)
    raw = client.messages.with_raw_response.create(
        model="anthropic/claude-test",
        max_tokens=16,
        system="Answer in one word.",
        messages=[{"role": "user", "content": "Capital of France?"}],
        metadata={"user_id": "end-user-7"},
        stop_sequences=["\n"],
    )
    message = raw.parse()
    assert message.content[0].text == "Paris" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 7)
    sent = vendor.seen[-1]
    credential = sent.headers.get("x-api-key") or sent.headers.get("authorization")
    assert PROVIDER_KEY in credential and API_KEY not in str(sent.headers)
    assert sent.body["system"] == "Answer in one word."
    assert sent.body["metadata"] == {"user_id": "end-user-7"}
    assert sent.body["stop_sequences"] == ["\n"]
    report = f"{base}/api/v1/tasks/{raw.headers['X-SOP-Task-Id']}/report"
    mine = requests.get(report, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert mine.status_code == 200 and PROVIDER_KEY not in mine.text
    _, other = issue("tasks", name="another-tenant")
    theirs = requests.get(report, headers={"Authorization": f"Bearer {other}"}, timeout=10)
    assert theirs.status_code == 404


def test_a_failure_while_streaming_is_an_error_event_in_the_doors_shape(processes, vendor):
    refusal = {"type": "error", "error": {"type": "invalid_request_error", "message": "no such"}}
    vendor.script[:] = [Reply(400, refusal)]
    env = {"ANTHROPIC_BASE_URL": vendor.url, "ANTHROPIC_API_KEY": PROVIDER_KEY}
    base = processes.web(**env)
    processes.worker("remote", **env)
    client = anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0, timeout=60)
    events = []
    with pytest.raises(anthropic.APIStatusError) as failed:
        for event in client.messages.create(
            model="anthropic/claude-test", max_tokens=8, messages=ASK, stream=True
        ):
            events.append(event.type)
    assert events == ["message_start"]  # then the error event, which the SDK raises
    assert failed.value.body["type"] == "error" and "no such" in failed.value.message
