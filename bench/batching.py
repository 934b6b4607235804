"""Micro-benchmark of the batch engine: aggregate generated tokens/s at 1, 2, 4 and 8 concurrent
sequences, one at a time through `Llama.generate` (today's engine) vs the batch engine, and with
a JSON schema at 4. Greedy, EOS ignored, so every sequence makes the same number of tokens.

    python -m bench.batching [--tokens 64] [--clients 1,2,4,8] [--slots 8] [--per-slot-kv]
"""

import argparse
import os
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")

from bench.common import MODEL_PATH  # noqa: E402
from bench.engine import LIST_SCHEMA  # noqa: E402

PROMPTS = [
    "Write a long story about a dragon who lived in the mountains. Once upon a time,",
    "Explain how a steam engine works, step by step.",
    "List the planets of the solar system and describe each one.",
    "Describe a busy market in a medieval town.",
]


def sequential(llama, tokens: int, clients: int) -> float:
    started = time.perf_counter()
    for i in range(clients):
        prompt = llama.tokenize(PROMPTS[i % len(PROMPTS)].encode(), add_bos=True)
        for n, _ in enumerate(llama.generate(prompt, temp=0.0, top_k=40, reset=True), 1):
            if n >= tokens:
                break
    return clients * tokens / (time.perf_counter() - started)


def batched(engine, llama, tokens: int, clients: int, constraint=None) -> tuple[float, dict]:
    from sop_llm.providers.types import GenerateRequest, SamplingParams

    made = [0] * clients
    before = engine.stats()

    def one(i):
        req = GenerateRequest(
            model="bench", params=SamplingParams(max_tokens=tokens, temperature=0)
        )
        prompt = llama.tokenize(PROMPTS[i % len(PROMPTS)].encode(), add_bos=True)
        kw = {"constraint": constraint} if constraint else {"ignore_eos": True}
        made[i] = engine.generate(req, prompt_tokens=prompt, model_name="bench", **kw).usage
        made[i] = made[i].completion_tokens

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = sum(made) / (time.perf_counter() - started)
    return rate, _per_step(before, engine.stats())


def _per_step(before: dict, after: dict) -> dict:
    steps = max(1, after["steps"] - before["steps"])
    per = lambda key: (after[key] * after["steps"] - before[key] * before["steps"]) / steps  # noqa: E731
    return {
        "python_ms": round(per("python_ms_per_step"), 2),
        "decode_ms": round(per("decode_ms_per_step"), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--per-slot-kv", action="store_true", help="a KV stream per slot")
    args = parser.parse_args()
    import django
    from llama_cpp import Llama

    from models_gpu.engine.batching import BatchEngine, batch_constraint
    from sop_llm.providers.types import ResponseFormat

    django.setup()
    llama = Llama(
        model_path=str(MODEL_PATH),
        n_ctx=2048,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    engine = BatchEngine(
        llama, slots=args.slots, n_ctx_per_slot=512, kv_unified=not args.per_slot_kv
    )
    print(
        f"tokens per sequence {args.tokens}, slots {args.slots}, threads {args.threads}, "
        f"KV {'per slot' if args.per_slot_kv else 'unified'}"
    )
    print(
        f"{'clients':>7} {'sequential tok/s':>17} {'batch tok/s':>12} {'x':>5} "
        f"{'python ms/step':>15} {'decode ms/step':>15}"
    )
    for clients in [int(c) for c in args.clients.split(",")]:
        seq = sequential(llama, args.tokens, clients)
        rate, step = batched(engine, llama, args.tokens, clients)
        print(
            f"{clients:>7} {seq:>17.1f} {rate:>12.1f} {rate / seq:>5.2f} "
            f"{step['python_ms']:>15} {step['decode_ms']:>15}"
        )
    grammar = batch_constraint(
        ResponseFormat("json_schema", LIST_SCHEMA), {"grammar_engine": "llguidance"}
    )
    rate, step = batched(engine, llama, 4 * args.tokens, 4, constraint=grammar)
    print(
        f"JSON schema, 4 clients: {rate:.1f} tok/s, python {step['python_ms']} ms/step, "
        f"decode {step['decode_ms']} ms/step"
    )
    engine.close()
    llama.close()


if __name__ == "__main__":
    main()
