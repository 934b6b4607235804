"""Tools, logprobs and the other passed fields on each remote wire format, against real HTTP
servers on 127.0.0.1 (issue 18)."""

import json

import openai
import pytest

from sop_llm.providers import get_provider
from sop_llm.providers.types import GenerateRequest, Message, SamplingParams
from tests.conftest import API_KEY
from tests.fakes.servers import FakeServer, Reply, anthropic_message, openai_chat

FUNCTION = {"name": "get_weather", "parameters": {"type": "object"}}
TOOLS = [{"type": "function", "function": FUNCTION}]
CALL = {
    "id": "call_abc",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
HISTORY = [
    Message("user", "Weather in Paris?"),
    Message("assistant", "", tool_calls=[CALL]),
    Message("tool", '{"temp": 21}', tool_call_id="call_abc"),
]
LOGPROBS = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.1,
            "bytes": [72, 105],
            "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}],
        }
    ],
    "refusal": None,
}


def request(messages=HISTORY, given=(), **kw) -> GenerateRequest:
    params = SamplingParams(max_tokens=20, given=tuple(given), **kw.pop("params", {}))
    return GenerateRequest(model="m", messages=list(messages), params=params, **kw)


def with_calls(body: dict, calls: list[dict]) -> dict:
    body["choices"][0]["message"].update(content=None, tool_calls=calls)
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


@pytest.fixture
def server():
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def openai_at(server, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = f"{server.url}/v1", "sk-test-1"
    return server


@pytest.fixture
def anthropic_at(server, settings):
    settings.ANTHROPIC_BASE_URL, settings.ANTHROPIC_API_KEY = server.url, "sk-ant-test-2"
    return server


def test_openai_gets_the_tools_and_the_tool_turns_and_returns_the_calls(openai_at):
    openai_at.reply(Reply(200, with_calls(openai_chat(""), [CALL])))
    result = get_provider("openai").generate(
        request(tools=TOOLS, tool_choice="required", parallel_tool_calls=False, user="u-1")
    )
    assert result.tool_calls == [CALL] and result.finish_reason == "tool_calls"
    sent = openai_at.seen[0].body
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "required"
    assert sent["parallel_tool_calls"] is False and sent["user"] == "u-1"
    assert sent["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [CALL]}
    assert sent["messages"][2] == {
        "role": "tool",
        "content": '{"temp": 21}',
        "tool_call_id": "call_abc",
    }


def test_openai_compatible_passes_logprobs_and_top_k_and_returns_the_logprobs(server):
    body = openai_chat("Hi")
    body["choices"][0]["logprobs"] = LOGPROBS
    server.reply(Reply(200, body))
    result = get_provider("openai_compatible").generate(
        request(
            params={"logprobs": True, "top_logprobs": 1, "top_k": 5},
            given=("logprobs", "top_logprobs", "top_k"),
            options={"base_url": f"{server.url}/v1"},
        )
    )
    assert result.logprobs == LOGPROBS["content"]
    sent = server.seen[0].body
    assert (sent["logprobs"], sent["top_logprobs"], sent["top_k"]) == (True, 1, 5)


def test_anthropic_maps_tools_and_tool_turns_both_ways(anthropic_at):
    reply = anthropic_message(tool_input={"city": "Paris"})
    reply["content"][0]["name"] = "get_weather"
    anthropic_at.reply(Reply(200, reply))
    result = get_provider("anthropic").generate(
        request(tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    )
    assert result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert call["id"] == "toolu_fake1" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    sent = anthropic_at.seen[0].body
    assert sent["tools"] == [
        {"name": "get_weather", "description": "", "input_schema": FUNCTION["parameters"]}
    ]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "call_abc",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ],
    }
    assert sent["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_abc", "content": '{"temp": 21}'}],
    }


def test_anthropic_gets_a_named_choice_and_the_user(anthropic_at):
    anthropic_at.reply(Reply(200, anthropic_message("ok")))
    named = {"type": "function", "function": {"name": "get_weather"}}
    get_provider("anthropic").generate(request(tools=TOOLS, tool_choice=named, user="u-2"))
    sent = anthropic_at.seen[0].body
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["metadata"] == {"user_id": "u-2"} and "temperature" not in sent


def test_custom_fills_the_user_placeholder(server):
    server.reply(Reply(200, {"text": "ok"}))
    options = {"url": f"{server.url}/gen", "body_template": {"p": "{{prompt}}", "who": "{{user}}"}}
    get_provider("custom").generate(
        GenerateRequest(model="m", prompt="hi", user="u-3", options=options)
    )
    assert server.seen[0].body == {"p": "hi", "who": "u-3"}


def test_openai_gets_n_and_every_choice_comes_back(openai_at):
    body = openai_chat("one")
    body["choices"].append(
        {**body["choices"][0], "index": 1, "message": {"role": "assistant", "content": "two"}}
    )
    openai_at.reply(Reply(200, body))
    result = get_provider("openai").generate(request(params={"n": 2}, given=("n",)))
    assert [result.text, *(c.text for c in result.choices)] == ["one", "two"]
    assert openai_at.seen[0].body["n"] == 2


def test_anthropic_answers_n_with_n_requests(anthropic_at):
    anthropic_at.reply(Reply(200, anthropic_message("a")), Reply(200, anthropic_message("b")))
    result = get_provider("anthropic").generate(request(params={"n": 2}, given=("n",)))
    assert [result.text, *(c.text for c in result.choices)] == ["a", "b"]
    assert len(anthropic_at.seen) == 2 and result.usage.completion_tokens == 14


@pytest.mark.slow
def test_a_remote_call_reaches_the_sdk_as_tool_calls_whole_and_streamed(processes, server):
    server.reply(Reply(200, with_calls(openai_chat(""), [CALL])))
    base = processes.web()
    processes.worker("remote", OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_API_KEY="sk-test-3")
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    ask = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    answer = client.chat.completions.create(**ask, tools=TOOLS, tool_choice="auto")
    assert answer.choices[0].finish_reason == "tool_calls"
    assert answer.choices[0].message.tool_calls[0].model_dump() == CALL
    chunks = list(client.chat.completions.create(**ask, tools=TOOLS, stream=True))
    deltas = [d for c in chunks for ch in c.choices for d in ch.delta.tool_calls or []]
    assert [(d.index, d.id, d.function.name) for d in deltas] == [(0, "call_abc", "get_weather")]
    assert deltas[0].function.arguments == CALL["function"]["arguments"]
