"""The project's own BatchEngine, built as the GPU worker builds it (models_gpu/engine/llama.py)."""

import os

from rows import PER_SLOT, PROMPTS, emit, fan_out, rate_row


def load(a, model: str, flash: bool):
    from llama_cpp import Llama

    return Llama(
        model_path=model,
        n_gpu_layers=-1 if a.ngl else 0,
        n_ctx=2048,
        flash_attn=flash,
        verbose=False,
        n_threads=a.threads,
        n_threads_batch=a.threads,
    )


def ours_bench(a, model: str, flash: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
    import django

    django.setup()
    from models_gpu.engine.batching import BatchEngine

    llama = load(a, model, flash)
    engine = BatchEngine(
        llama, slots=max(a.levels), n_ctx_per_slot=PER_SLOT, n_batch=512, threads=a.threads
    )
    prompts = [llama.tokenize(p.encode(), add_bos=True) for p in PROMPTS]
    one = lambda i, temp, made: _one(a, engine, prompts, i, temp, made)  # noqa: E731
    one(0, 0, [0])
    for temp in a.temps:
        for c in a.levels:
            before = engine.stats()
            made, wall = fan_out(c, one, temp)
            row = rate_row(f"ours_fa{int(flash)}", a, c, temp, made, wall)
            emit({**row, **_per_step(before, engine.stats())})
    engine.close()
    llama.close()


def _one(a, engine, prompts, i: int, temp: float, made: list[int]) -> None:
    from sop_llm.providers.types import GenerateRequest, SamplingParams

    sampled = dict(temperature=0.8, top_k=40, top_p=0.95) if temp else dict(temperature=0)
    params = SamplingParams(max_tokens=a.tokens, repeat_penalty=1.0, seed=1000 + i, **sampled)
    result = engine.generate(
        GenerateRequest(model="bench", params=params),
        prompt_tokens=prompts[i % 4],
        model_name="bench",
        ignore_eos=True,
    )
    made[i] = result.usage.completion_tokens


def _per_step(before: dict, after: dict) -> dict:
    """stats() keeps running means: the means over the steps between two readings."""
    steps = max(1, after["steps"] - before["steps"])
    mean = lambda k: (after[k] * after["steps"] - before[k] * before["steps"]) / steps  # noqa: E731
    return {
        "python_ms_step": round(mean("python_ms_per_step"), 3),
        "decode_ms_step": round(mean("decode_ms_per_step"), 3),
        "tokens_on_device": after["tokens_on_device"] - before["tokens_on_device"],
        "tokens_on_host": after["tokens_on_host"] - before["tokens_on_host"],
    }
