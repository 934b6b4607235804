"""Tool calling, logprobs and n through the official `openai` SDK against the real local model
(issue 18). Answers are kept short: the suite runs on two cores."""

import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest

from tests.conftest import API_KEY

pytestmark = pytest.mark.slow
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "unit": {"enum": ["c", "f"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TIME = {
    "type": "object",
    "properties": {"zone": {"type": "string", "maxLength": 10}},
    "required": ["zone"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": WEATHER,
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "description": "Time in a zone", "parameters": TIME},
    },
]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def client(processes):
    base = processes.web()
    # One thread: on a loaded two-core machine llama.cpp's spinning threads cost ~5x.
    processes.worker("gpu", gpu=True, LLAMA_THREADS="1")
    return openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def chat(client, **kw):
    kw = {"model": "gemma", "messages": ASK, "max_tokens": 60, "temperature": 0, "seed": 1, **kw}
    return client.chat.completions.create(**kw)


def assert_valid_call(call) -> None:
    assert call.type == "function" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def streamed_calls(stream) -> tuple[list[dict], list[str]]:
    calls, finishes = {}, []
    for chunk in stream:
        for choice in chunk.choices:
            finishes += [choice.finish_reason] if choice.finish_reason else []
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    return list(calls.values()), finishes


def test_required_gives_a_call_valid_against_its_schema_whole_and_streamed(client):
    choice = chat(client, tools=TOOLS, tool_choice="required").choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert len(choice.message.tool_calls) == 1
    assert_valid_call(choice.message.tool_calls[0])
    calls, finishes = streamed_calls(chat(client, tools=TOOLS, tool_choice="required", stream=True))
    assert finishes == ["tool_calls"] and len(calls) == 1 and calls[0]["id"].startswith("call_")
    jsonschema.validate(json.loads(calls[0]["arguments"]), SCHEMAS[calls[0]["name"]])


def test_a_named_choice_calls_that_tool(client):
    named = {"type": "function", "function": {"name": "get_time"}}
    call = chat(client, tools=TOOLS, tool_choice=named).choices[0].message.tool_calls[0]
    assert call.function.name == "get_time"
    assert_valid_call(call)


def test_auto_answers_in_text_or_with_a_valid_call_whole_and_streamed(client):
    for seed in range(3):
        choice = chat(client, tools=TOOLS, tool_choice="auto", temperature=1.0, seed=seed)
        message = choice.choices[0].message
        if message.tool_calls:
            assert choice.choices[0].finish_reason == "tool_calls"
            assert_valid_call(message.tool_calls[0])
        else:
            assert message.content and not message.content.lstrip().startswith("{")
    stream = chat(client, tools=TOOLS, tool_choice="auto", stream=True)
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_a_two_turn_exchange_calls_a_tool_then_answers_from_its_result(client):
    first = chat(client, tools=TOOLS, tool_choice="required").choices[0].message
    call = first.tool_calls[0]
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "clear"}'},
    ]
    second = chat(client, messages=history, tools=TOOLS, tool_choice="none", max_tokens=20)
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls
    assert second.choices[0].finish_reason in ("stop", "length")


def test_twenty_calls_at_temperature_one_all_parse_and_fit_their_schemas(client):
    def one(seed: int):
        return chat(
            client, tools=TOOLS, tool_choice="required", temperature=1.0, seed=seed, max_tokens=90
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(one, range(20)))
    for answer in answers:
        assert answer.choices[0].finish_reason == "tool_calls"
        assert_valid_call(answer.choices[0].message.tool_calls[0])


def test_logprobs_with_the_top_three_whole_and_streamed(client):
    extra = {"repeat_penalty": 1.0}  # greedy, unpenalized: the sampled token is the top one
    answer = chat(client, max_tokens=5, logprobs=True, top_logprobs=3, extra_body=extra)
    content = answer.choices[0].logprobs.content
    assert len(content) == answer.usage.completion_tokens
    assert "".join(t.token for t in content) == answer.choices[0].message.content
    for token in content:
        assert len(token.top_logprobs) == 3 and token.token == token.top_logprobs[0].token
        assert token.logprob <= 0 and bytes(token.bytes).decode() == token.token
    stream = chat(
        client, max_tokens=5, logprobs=True, top_logprobs=3, stream=True, extra_body=extra
    )
    streamed = [t for c in stream for ch in c.choices if ch.logprobs for t in ch.logprobs.content]
    assert [(t.token, t.logprob) for t in streamed] == [(t.token, t.logprob) for t in content]


def test_completions_logprobs_come_in_the_legacy_shape(client):
    answer = client.completions.create(
        model="gemma", prompt="The capital of France is", max_tokens=4, temperature=0, logprobs=2
    )
    logprobs = answer.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.text_offset) == 4
    assert all(len(top) == 2 for top in logprobs.top_logprobs)
    assert "".join(logprobs.tokens) == answer.choices[0].text


def test_n_three_gives_three_choices_whole_and_streamed(client):
    answer = chat(client, n=3, max_tokens=6, temperature=1.0, seed=9)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert all(c.message.content is not None for c in answer.choices)
    stream = chat(client, n=3, max_tokens=6, temperature=1.0, seed=9, stream=True)
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            finishes[choice.index] = choice.finish_reason or finishes.get(choice.index)
    assert sorted(texts) == [0, 1, 2]
    assert set(finishes.values()) <= {"stop", "length"} and len(finishes) == 3
