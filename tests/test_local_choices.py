"""The local model's logprobs, n choices and tool calls on both engine paths (issue 18)."""

import math

import pytest

from models_gpu.guard import gpu_guard
from sop_llm.providers import get_provider
from sop_llm.providers.types import GenerateRequest, SamplingParams

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def fresh_guard():
    yield
    gpu_guard().shutdown()


def prompt(**params) -> GenerateRequest:
    params = {"max_tokens": 6, "temperature": 0.0, "seed": 42, "repeat_penalty": 1.0, **params}
    return GenerateRequest(
        model="gemma", prompt="The capital of France is", params=SamplingParams(**params)
    )


@pytest.mark.parametrize("slots", [1, 2], ids=["single", "batched"])
def test_each_answer_token_carries_its_logprob_and_the_top_three(settings, slots):
    settings.GPU_SLOTS = slots
    result = get_provider("local").generate(prompt(logprobs=True, top_logprobs=3))
    entries = result.logprobs
    assert len(entries) == result.usage.completion_tokens == 6
    assert "".join(e["token"] for e in entries) == result.text
    for entry in entries:
        top = entry["top_logprobs"]
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert len(top) == 3 and entry["logprob"] <= 0
        assert bytes(entry["bytes"]).decode() == entry["token"]
        # Greedy without penalties takes the model's most likely token.
        assert (entry["token"], entry["logprob"]) == (top[0]["token"], top[0]["logprob"])
        assert sum(math.exp(t["logprob"]) for t in top) <= 1.0001


def test_no_logprobs_unless_asked(settings):
    settings.GPU_SLOTS = 2
    assert get_provider("local").generate(prompt()).logprobs is None


STORY = "Write one sentence about a lighthouse keeper who finds a message in a bottle on the shore."


@pytest.mark.parametrize("slots", [1, 4], ids=["single", "batched"])
def test_n_choices_sample_apart_from_one_prompt(settings, slots):
    settings.GPU_SLOTS = slots
    request = GenerateRequest(
        model="gemma",
        prompt=STORY,
        params=SamplingParams(max_tokens=8, temperature=1.0, seed=5, n=3),
    )
    result = get_provider("local").generate(request)
    choices = [result, *result.choices]
    assert len(choices) == 3 and len({c.text for c in choices}) > 1
    assert 3 <= result.usage.completion_tokens <= 3 * 8  # the choices' tokens together
    assert [c.meta["repro"]["seed_used"] for c in choices] == [5, 6, 7]
    if slots > 1:  # one prefill: the others start from the first one's prompt in the KV cache
        prompt = result.usage.prompt_tokens
        assert [c.timings["cached_prompt_tokens"] for c in choices[1:]] == [prompt - 1] * 2


def test_a_required_tool_call_on_the_single_path_fits_its_schema(settings):
    import json

    import jsonschema

    from sop_llm.providers.types import Message

    settings.GPU_SLOTS, settings.LLAMA_THREADS = 1, 1
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    }
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": schema}}
    request = GenerateRequest(
        model="gemma",
        messages=[Message("user", "Weather in Paris?")],
        params=SamplingParams(max_tokens=40, temperature=1.0, seed=3),
        tools=[tool],
        tool_choice="required",
    )
    result = get_provider("local").generate(request)
    (call,) = result.tool_calls
    assert result.finish_reason == "tool_calls" and call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), schema)
