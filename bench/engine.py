"""Scenarios on the real model: engine overhead (1), structured output (3), model load (4)."""

import os
import time

from bench.common import MODEL_PATH, Service, summary

PROMPT = "Write a long story about a dragon who lived in the mountains. Once upon a time,"
PARAMS = {"temperature": 0.0, "seed": 42, "top_k": 40, "top_p": 0.95, "repeat_penalty": 1.1}
# Keywords both engines enforce (llama.cpp's converter ignores string/number bounds), so both
# finish the same kind of answer: 16 small objects, ~160 tokens.
LIST_SCHEMA = {
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {
            "type": "array",
            "minItems": 16,
            "maxItems": 16,
            "items": {
                "type": "object",
                "required": ["n", "ok"],
                "additionalProperties": False,
                "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}},
            },
        }
    },
}


def direct_llama():
    from llama_cpp import Llama

    return Llama(
        model_path=str(MODEL_PATH),
        n_ctx=4096,
        n_threads=os.cpu_count(),
        n_threads_batch=os.cpu_count(),
        verbose=False,
    )


def _direct(llama, max_tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    out = llama.create_completion(PROMPT, max_tokens=max_tokens, **PARAMS)
    return time.perf_counter() - started, out["usage"]["completion_tokens"]


def _service(svc: Service, max_tokens: int, session, **extra) -> tuple[float, dict]:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": PROMPT,
        "params": {"max_tokens": max_tokens, **PARAMS},
        **extra,
    }
    started = time.perf_counter()
    task = svc.post("/api/v1/tasks", body, session=session, Prefer="wait=300").json()
    elapsed = time.perf_counter() - started
    assert task["status"] == "completed", task
    return elapsed, task


def engine_overhead(svc: Service, session, reps: int, short_reps: int) -> dict:
    """Scenario 1: the same generation, direct in this process vs POST -> completed.
    Runs alternate (direct, service, direct, ...) so machine drift hits both alike."""
    llama = direct_llama()
    _direct(llama, 16)
    _service(svc, 16, session)  # warm-up (and the model is loaded on the GPU worker)
    direct, service, short_direct, short_service = [], [], [], []
    for _ in range(reps):
        direct.append(_direct(llama, 128))
        service.append(_service(svc, 128, session))
    for _ in range(short_reps):
        short_direct.append(_direct(llama, 8)[0] * 1000)
        short_service.append(_service(svc, 8, session)[0] * 1000)
    llama.close()
    direct_tps = summary([n / s for s, n in direct])
    service_tps = summary([t["usage"]["completion_tokens"] / s for s, t in service])
    added = summary([s - d for s, d in zip(short_service, short_direct, strict=True)])
    return {
        "direct_tokens_per_s": direct_tps,
        "service_tokens_per_s": service_tps,
        "ratio": service_tps["median"] / direct_tps["median"],
        "short_direct_ms": summary(short_direct),
        "short_service_ms": summary(short_service),
        "added_latency_ms": added,
        "added_latency_ms_p50": added["median"],
    }


def structured(svc: Service, session, reps: int, warm: bool = True) -> dict:
    """Scenario 3: unconstrained vs llama.cpp's GBNF vs llguidance, same model and prompt.
    `warm`: one answer first that is not counted (off in a smoke run, whose numbers mean
    nothing anyway: it halves the scenario's time in the test suite)."""
    fmt = {"type": "json_schema", "json_schema": {"name": "list", "schema": LIST_SCHEMA}}
    runs = {
        "unconstrained": {},
        "native_gbnf": {"response_format": fmt, "options": {"grammar_engine": "native"}},
        "llguidance": {"response_format": fmt},
    }
    out = {}
    for name, extra in runs.items():
        if warm:
            _service(svc, 400, session, **extra)  # compiles and caches the grammar
        rates = []
        for _ in range(reps):
            _, task = _service(svc, 400, session, **extra)
            report = svc.get(f"/api/v1/tasks/{task['task_id']}/report", session).json()
            rates.append(report["timings"]["tokens_per_second"])
        out[name] = summary(rates)
    base = out["unconstrained"]["median"]
    out["llguidance_ratio"] = out["llguidance"]["median"] / base
    out["native_ratio"] = out["native_gbnf"]["median"] / base
    return out


def model_load(svc: Service, session, reps: int) -> dict:
    """Scenario 4: a cold load through the API vs constructing Llama() directly; hot path."""
    api_ms, reported_ms, direct_ms = [], [], []
    for _ in range(reps):
        svc.post("/api/v1/models/unload", {}, session=session)
        started = time.perf_counter()
        loaded = svc.post("/api/v1/models/load", {"model": "gemma"}, session=session).json()
        api_ms.append((time.perf_counter() - started) * 1000)
        reported_ms.append(loaded["load_ms"])
    for _ in range(reps):
        started = time.perf_counter()
        llama = direct_llama()
        direct_ms.append((time.perf_counter() - started) * 1000)
        llama.close()
    again = svc.post("/api/v1/models/load", {"model": "gemma"}, session=session).json()
    _, task = _service(svc, 4, session)
    hot = svc.get(f"/api/v1/tasks/{task['task_id']}/report", session).json()["timings"]
    return {
        "api_cold_ms": summary(api_ms),
        "worker_load_ms": summary(reported_ms),
        "direct_ms": summary(direct_ms),
        "already_loaded": again["outcome"],
        "hot_path": hot["hot_path"],
        "hot_path_load_ms": hot["load_ms"],
    }
