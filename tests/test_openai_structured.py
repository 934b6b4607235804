"""Structured answers on /v1 as OpenAI gives them (issue 25, item 5): an answer cut by
max_tokens is a 200 with finish_reason "length" and the text so far; a deterministic failure is
never a status the SDKs retry. Through the official `openai` SDK against the real local model."""

import json

import openai
import pytest

from tasks.batches.lines import _outcome
from tasks.openai.serving.answer import final_response
from tests.conftest import API_KEY

NAMES = {
    "type": "object",
    "properties": {"names": {"type": "array", "items": {"type": "string"}, "minItems": 5}},
    "required": ["names"],
    "additionalProperties": False,
}
RETRIED_BY_SDKS = {408, 409, 429}  # and every 5xx
DETERMINISTIC = ["context_length", "invalid_output", "truncated", "grammar_error", "bad_request"]


@pytest.mark.parametrize("code", DETERMINISTIC)
def test_a_deterministic_failure_is_never_a_status_the_sdks_retry(code):
    task = {"task_id": "t1", "status": "failed", "error": {"code": code, "message": "no"}}
    status = final_response(task, "gemma", chat=True).status_code
    assert status < 500 and status not in RETRIED_BY_SDKS, (code, status)


@pytest.mark.parametrize("code", DETERMINISTIC)
def test_a_batch_line_that_failed_deterministically_carries_the_same_4xx(code):
    from types import SimpleNamespace

    task = SimpleNamespace(task_id="t1", batch={"url": "/v1/chat/completions", "model": "m"})
    response, _ = _outcome(task, "failed", {"error": {"code": code, "message": "no"}})
    assert (
        response["status_code"]
        == final_response(
            {"task_id": "t1", "status": "failed", "error": {"code": code}}, "m", chat=True
        ).status_code
    )


@pytest.fixture
def client(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True, LLAMA_THREADS="1")
    return openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=120)


@pytest.fixture
def alone_client(processes):
    """One slot: no batch, each answer runs alone (its own path through the grammar)."""
    base = processes.web()
    processes.worker("gpu", gpu=True, LLAMA_THREADS="1", GPU_SLOTS="1")
    return openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def ask(client, **kw):
    kw = {
        "model": "gemma",
        "messages": [{"role": "user", "content": "List five names of cities."}],
        "temperature": 0,
        "seed": 1,
        **kw,
    }
    return client.chat.completions.create(**kw)


NAMES_FORMAT = {"type": "json_schema", "json_schema": {"name": "names", "schema": NAMES}}


@pytest.mark.slow
def test_a_json_schema_answer_cut_by_max_tokens_is_a_200_with_length_and_the_text_so_far(client):
    answer = ask(client, max_tokens=4, response_format=NAMES_FORMAT)
    [choice] = answer.choices
    assert choice.finish_reason == "length"
    assert choice.message.content.startswith('{"names"')
    with pytest.raises(ValueError):
        json.loads(choice.message.content)  # the text so far, not a complete answer
    assert answer.usage.completion_tokens == 4


@pytest.mark.slow
def test_a_cut_answer_run_alone_is_a_200_with_length_too(alone_client):
    answer = ask(alone_client, max_tokens=4, response_format=NAMES_FORMAT)
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content.startswith('{"names"')


@pytest.mark.slow
def test_a_cut_structured_answer_streams_its_text_and_ends_with_length(client):
    stream = ask(client, max_tokens=4, response_format=NAMES_FORMAT, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith('{"names"')
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


@pytest.mark.slow
def test_a_tool_call_cut_by_max_tokens_is_a_200_with_length_not_a_broken_call(client):
    tool = {"type": "function", "function": {"name": "names", "parameters": NAMES}}
    answer = ask(client, max_tokens=4, tools=[tool], tool_choice="required")
    [choice] = answer.choices
    assert choice.finish_reason == "length" and not choice.message.tool_calls
    assert choice.message.content.lstrip().startswith("{")


COUNT = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "x": {"type": "number"}},
    "required": ["n", "x"],
    "additionalProperties": False,
}
ONES = "1" * 80


@pytest.mark.slow
@pytest.mark.parametrize("how", ["response_format", "tool"])
def test_a_greedy_number_field_ends_within_sixteen_digits(client, how):
    """Asked to copy an 80-digit number at temperature 0, the model would write digits until
    max_tokens; the grammar caps integers and numbers at 16 integral digits, as llama.cpp's."""
    messages = [{"role": "user", "content": f"Copy this number into n and x: {ONES}{ONES}"}]
    if how == "tool":
        tool = {"type": "function", "function": {"name": "count", "parameters": COUNT}}
        answer = ask(client, messages=messages, max_tokens=80, tools=[tool], tool_choice="required")
        arguments = answer.choices[0].message.tool_calls[0].function.arguments
    else:
        format_ = {"type": "json_schema", "json_schema": {"name": "count", "schema": COUNT}}
        answer = ask(client, messages=messages, max_tokens=80, response_format=format_)
        arguments = answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "tool_calls")
    value = json.loads(arguments)
    assert abs(value["n"]) < 10**16 and abs(int(value["x"])) < 10**16, value


CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather of a city", "parameters": CITY},
}
ANSWER = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 20}},
    "required": ["answer"],
    "additionalProperties": False,
}
ANSWER_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tools_beside_a_json_schema_give_a_valid_call_or_a_valid_answer(client, seed):
    """OpenAI allows both at once (pydantic-ai sends a tool and a typed output): the local
    grammar lets the model choose a call to a tool or an answer in the format, each whole."""
    import jsonschema

    answer = ask(
        client,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        max_tokens=60,
        seed=seed,
        temperature=1,
        tools=[WEATHER_TOOL],
        response_format=ANSWER_FORMAT,
    )
    [choice] = answer.choices
    if choice.finish_reason == "tool_calls":
        [call] = choice.message.tool_calls
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), CITY)
    else:
        assert choice.finish_reason == "stop" and not choice.message.tool_calls
        jsonschema.validate(json.loads(choice.message.content), ANSWER)


@pytest.mark.slow
def test_after_a_tool_result_the_answer_comes_in_the_format(client):
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    history = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    answer = ask(
        client,
        messages=history,
        max_tokens=40,
        tools=[WEATHER_TOOL],
        tool_choice="none",
        response_format=ANSWER_FORMAT,
    )
    assert answer.choices[0].finish_reason == "stop"
    assert set(json.loads(answer.choices[0].message.content)) == {"answer"}
