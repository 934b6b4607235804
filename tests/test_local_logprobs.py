"""Log-probabilities of the local model's answer tokens, on both engine paths (issue 18)."""

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
