"""The decode loop's own cost (issue 26): Python CPU time of the loop thread per step
(`BatchEngine.stats()["python_ms_per_step"]`, thread time, so a busy machine does not inflate
it) at 1, 8 and 32 concurrent sequences, greedy and at temperature 0.8, on the dev model.

    python -m bench.loop_cost [--tokens 32] [--clients 1,8,32]
"""

import argparse
import json
import os
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")

from bench.common import MODEL_PATH  # noqa: E402

PROMPT = "Write a long story about a dragon who lived in the mountains. Once upon a time,"
TEMPERATURES = (0.0, 0.8)
N_CTX_PER_SLOT = 256


def _params(temperature: float, tokens: int, seed: int):
    from sop_llm.providers.types import SamplingParams

    return SamplingParams(
        max_tokens=tokens, temperature=temperature, top_k=40, top_p=0.95, seed=seed
    )


def _run(engine, prompt: list[int], clients: int, temperature: float, tokens: int) -> None:
    from sop_llm.providers.types import GenerateRequest

    def one(i: int) -> None:
        request = GenerateRequest(model="bench", params=_params(temperature, tokens, i))
        engine.generate(request, prompt_tokens=prompt, model_name="bench", ignore_eos=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _delta(before: dict, after: dict) -> dict:
    steps = max(1, after["steps"] - before["steps"])
    total = lambda s, key: s[key] * s["steps"]  # noqa: E731
    row = {"steps": steps}
    for key in ("python_ms_per_step", "decode_ms_per_step"):
        row[key] = round((total(after, key) - total(before, key)) / steps, 3)
    for key in ("tokens_on_device", "tokens_on_host"):
        if key in after:
            row[key] = after[key] - before[key]
    return row


def loop_cost(
    clients=(1, 8, 32), tokens: int = 32, threads: int | None = None, device: bool = True
) -> list[dict]:
    """One engine with max(clients) slots; a warm-up run, then each (temperature, clients).
    `device` False samples every slot on the host (numpy), as the engine did before issue 26."""
    from llama_cpp import Llama

    from models_gpu.engine.batching import BatchEngine

    threads = threads or os.cpu_count() or 1
    llama = Llama(model_path=str(MODEL_PATH), n_ctx=512, n_threads=threads, verbose=False)
    slots = max(clients)
    engine = BatchEngine(
        llama,
        slots=slots,
        n_ctx_per_slot=N_CTX_PER_SLOT,
        threads=threads,
        device_sampling=device,
    )
    prompt = llama.tokenize(PROMPT.encode(), add_bos=True)
    rows = []
    try:
        _run(engine, prompt, 1, 0.0, 4)
        for temperature in TEMPERATURES:
            for n in clients:
                before = engine.stats()
                _run(engine, prompt, n, temperature, tokens)
                row = {"sampling": "device" if device else "host", "clients": n}
                row["temperature"] = temperature
                rows.append(row | _delta(before, engine.stats()))
    finally:
        engine.close()
        llama.close()
    return rows


def scenario(size: dict) -> dict:
    """`make bench`'s row: both sampling paths, and the target's number (python ms per step at
    the most slots, temperature 0.8, on the device)."""
    rows = []
    for device in (True, False):
        rows += loop_cost(size["clients"], size["tokens"], device=device)
    top = max(size["clients"])
    target = [
        r for r in rows if (r["sampling"], r["clients"], r["temperature"]) == ("device", top, 0.8)
    ]
    best = target[0]["python_ms_per_step"]
    return {"rows": rows, "slots": top, "tokens": size["tokens"], "python_ms_top_t08": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--host", action="store_true", help="sample every slot on the host")
    args = parser.parse_args()
    import django

    django.setup()
    clients = tuple(int(c) for c in args.clients.split(","))
    for row in loop_cost(clients, args.tokens, device=not args.host):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
