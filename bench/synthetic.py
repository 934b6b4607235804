"""Scenario: the service at GPU token rates (issue 26, item 6), on the synthetic engine.

The GPU worker runs LOCAL_ENGINE=synthetic: each decode step sleeps SYNTHETIC_STEP_MS and
yields one token per live slot, so 32 slots x 10 ms is 3,200 tok/s, an H200's rate for a 4B
model at 32 sequences. Measured in one run, with the same work (`clients` callers, each asking
`rounds` answers of `tokens` tokens one after another):
- the engine alone: SyntheticEngine in this process, each caller a thread calling generate();
- the service: each caller streams /v1/chat/completions over HTTP (web, Redis pub/sub, the GPU
  worker's slot threads), and every stream is checked: its pieces, joined, are the engine's
  canned text of exactly `tokens` tokens, with finish_reason `length` and the usage to match.
Rate: generated tokens / wall time from the first request to the last answer.
"""

import json
import threading
import time
import uuid

import requests

from bench.common import Service, wait_until
from models_gpu.engine.synthetic import SyntheticEngine, synthetic_text
from sop_llm.providers.types import GenerateRequest, SamplingParams

SMOKE = {"clients": 4, "slots": 4, "step_ms": 10.0, "tokens": 20, "rounds": 2}
FULL = {"clients": 32, "slots": 32, "step_ms": 10.0, "tokens": 100, "rounds": 5}
PROMPT = "Tell me about the mill by the river."


def service_ratio(redis_url: str, size: dict) -> dict:
    alone = engine_alone(size)
    service = through_service(redis_url, size)
    ideal = size["slots"] * 1000 / size["step_ms"]
    return {
        **size,
        "ideal_tok_s": ideal,
        "engine_tok_s": alone["tok_s"],
        "service_tok_s": service["tok_s"],
        "ratio": round(service["tok_s"] / alone["tok_s"], 3),
        "engine": alone,
        "service": service,
    }


def engine_alone(size: dict) -> dict:
    engine = SyntheticEngine(
        slots=size["slots"], n_ctx=4096 * size["slots"], step_ms=size["step_ms"]
    )
    prompt = list(range(1, 12))

    def one(_: int) -> int:
        pieces = []
        request = GenerateRequest(
            model="synthetic",
            prompt=PROMPT,
            params=SamplingParams(max_tokens=size["tokens"]),
            on_token=pieces.append,
        )
        result = engine.generate(request, prompt_tokens=prompt, model_name="synthetic")
        assert "".join(pieces) == result.text == synthetic_text(size["tokens"])
        return result.usage.completion_tokens

    try:
        return _timed(one, size)
    finally:
        engine.close()


def through_service(redis_url: str, size: dict) -> dict:
    svc = Service(
        redis_url=redis_url,
        key="bench-" + uuid.uuid4().hex,
        prefix=f"bench-{uuid.uuid4().hex[:8]}:",
        extra_env={
            "LOCAL_ENGINE": "synthetic",
            "SYNTHETIC_STEP_MS": size["step_ms"],
            "GPU_SLOTS": size["slots"],
        },
    )
    session = requests.Session()
    try:
        svc.web()
        svc.worker("gpu", "gpu")
        svc.post("/api/v1/models/load", {"model": "gemma"}, session=session).raise_for_status()
        wait_until(lambda: _stream(svc, session, size["tokens"]), what="a first stream")
        return _timed(lambda _: _stream(svc, requests.Session(), size["tokens"]), size)
    finally:
        svc.stop_all()


def _timed(one, size: dict) -> dict:
    """`clients` threads, each running `one` `rounds` times; tokens / wall time."""
    counts: list[int] = []
    errors: list[BaseException] = []

    def caller(i: int) -> None:
        try:
            counts.extend(one(i) for _ in range(size["rounds"]))
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(size["clients"])]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return {"tokens": sum(counts), "s": round(elapsed, 3), "tok_s": round(sum(counts) / elapsed)}


def _stream(svc: Service, session, tokens: int) -> int:
    """One streamed chat completion, checked whole and in order -> its completion tokens."""
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    text, finish, usage = [], None, None
    url = f"{svc.url}/v1/chat/completions"
    with session.post(url, json=body, headers=svc.headers, stream=True, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            assert "error" not in chunk, (response.headers.get("X-SOP-Task-Id"), chunk)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                text.append(choice["delta"].get("content") or "")
                finish = choice.get("finish_reason") or finish
    assert "".join(text) == synthetic_text(tokens), "a stream came out incomplete or out of order"
    assert finish == "length" and usage["completion_tokens"] == tokens, (finish, usage)
    return tokens


def synthetic_lines(r: dict) -> list[str]:
    """Its section of docs/BENCHMARKS.md."""
    return [
        f"**The service at GPU token rates** (synthetic engine: {r['slots']} slots x "
        f"{r['step_ms']:g} ms steps, ideal {r['ideal_tok_s']:.0f} tok/s; {r['clients']} callers x "
        f"{r['rounds']} answers of {r['tokens']} tokens, every stream checked whole and in order)",
        "",
        f"- the engine alone: {r['engine_tok_s']} tok/s",
        f"- through the service (streamed /v1/chat/completions): {r['service_tok_s']} tok/s",
        f"- ratio: {r['ratio']}x",
        "",
    ]
