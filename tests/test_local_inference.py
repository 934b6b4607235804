"""The local provider and the GPU Guard on the real Gemma 3 270M model (llama.cpp, CPU)."""

import pytest

from models_gpu.guard import gpu_guard, rss_mb
from sop_llm.providers import get_provider
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, Message, SamplingParams

pytestmark = pytest.mark.slow
MODEL = "gemma-3-270m-q4_k_m"


@pytest.fixture(autouse=True)
def fresh_guard():
    yield
    gpu_guard().shutdown()


def prompt(text="The capital of France is", **params) -> GenerateRequest:
    params = {"max_tokens": 16, "temperature": 0.0, "seed": 42, **params}
    return GenerateRequest(model=MODEL, prompt=text, params=SamplingParams(**params))


def test_it_generates_with_usage_load_time_then_the_hot_path():
    local = get_provider("local")
    first = local.generate(prompt())
    assert first.text.strip() and first.finish_reason == "length"
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (6, 16)
    assert first.timings["hot_path"] is False and first.timings["load_ms"] > 0
    second = local.generate(prompt())
    assert second.timings["hot_path"] is True and second.timings["load_ms"] == 0.0
    assert second.text == first.text  # same seed, same text
    assert first.meta["repro"]["gguf_sha256"] == (
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    )


def test_chat_uses_the_preset_chat_format():
    request = GenerateRequest(
        model="gemma",
        messages=[Message("user", "Say hello.")],
        params=SamplingParams(max_tokens=12, temperature=0.0, seed=1),
    )
    result = get_provider("local").generate(request)
    assert result.usage.prompt_tokens > 5 and result.usage.completion_tokens > 0


def test_a_stop_sequence_ends_the_answer_and_is_never_streamed():
    pieces = []
    request = prompt("1, 2, 3, 4, 5,", max_tokens=40, stop=[" 9"])
    request.on_token = pieces.append
    result = get_provider("local").generate(request)
    assert result.finish_reason == "stop" and " 9" not in result.text
    assert "".join(pieces) == result.text and " 8" in result.text


def test_a_cancelled_generation_stops_within_one_token():
    seen = []
    request = prompt("Once upon a time", max_tokens=200)
    request.on_token = seen.append
    request.is_cancelled = lambda: len(seen) >= 5
    with pytest.raises(ProviderError) as caught:
        get_provider("local").generate(request)
    assert caught.value.code == "cancelled"
    assert "after 5 tokens" in caught.value.message or "after 6 tokens" in caught.value.message


def test_a_prompt_longer_than_the_context_is_a_clear_error():
    request = prompt("word " * 5000)
    request.options = {"load": {"n_ctx": 512}}
    with pytest.raises(ProviderError) as caught:
        get_provider("local").generate(request)
    # The batch names the slot's share of the context (n_ctx / GPU_SLOTS) and both numbers.
    assert caught.value.code == "context_length" and "n_ctx 512 / 4 slots" in caught.value.message


def test_a_different_context_reloads_but_a_smaller_one_reuses_the_model():
    local = get_provider("local")
    big = prompt()
    big.options = {"load": {"n_ctx": 2048}}
    assert local.generate(big).timings["hot_path"] is False
    small = prompt()
    small.options = {"load": {"n_ctx": 1024}}
    assert local.generate(small).timings["hot_path"] is True
    bigger = prompt()
    bigger.options = {"load": {"n_ctx": 4096}}
    assert local.generate(bigger).timings["hot_path"] is False


def test_unload_really_gives_the_memory_back():
    baseline = rss_mb()
    get_provider("local").generate(prompt())
    loaded = rss_mb()
    freed = gpu_guard().unload()
    assert loaded - baseline > 150  # weights + KV cache
    assert freed["rss_before_mb"] - freed["rss_after_mb"] > 150
    assert rss_mb() - baseline < 60
    assert gpu_guard().status() is None


def test_the_guard_refuses_a_load_that_would_not_fit_in_vram(settings, monkeypatch):
    settings.GPU_READER = "tests.fakes.gpu.FakeGpuReader"
    monkeypatch.setenv(
        "FAKE_GPU", '{"memory_total_mb": 8000, "memory_used_mb": 7500, "memory_free_mb": 500}'
    )
    with pytest.raises(ProviderError) as caught:
        get_provider("local").generate(prompt())
    assert caught.value.code == "insufficient_vram"
    assert "500 MB free of 8000 MB" in caught.value.message
    assert gpu_guard().status() is None


def test_the_reserve_is_honoured_even_below_the_percentage(settings, monkeypatch):
    settings.GPU_READER = "tests.fakes.gpu.FakeGpuReader"
    settings.VRAM_RESERVE_MB, settings.MAX_VRAM_USAGE_PERCENT = 4000, 100
    monkeypatch.setenv(
        "FAKE_GPU", '{"memory_total_mb": 8000, "memory_used_mb": 3800, "memory_free_mb": 4200}'
    )
    with pytest.raises(ProviderError, match="VRAM_RESERVE_MB=4000"):
        get_provider("local").generate(prompt())
    settings.VRAM_RESERVE_MB = 1024
    assert get_provider("local").generate(prompt()).text
