"""Scenario: scheduling a shared GPU (issue 29).

- Checkpoint cost: aggregate tokens/s of 4 concurrent 128-token greedy tasks (GPU_SLOTS=4) with
  checkpoints every 32 tokens / 500 ms against checkpoints off, the two workers taking turns
  repetition by repetition (target >= 0.97x).
- Preemption: GPU_SLOTS=2, two running priority-0 tasks of 256 tokens, then a priority-50 task
  of 8 tokens: how long it waits (queued -> claimed, plus claimed -> in a slot), with
  preemption on and off (PREEMPT_PRIORITY_GAP=0).
"""

import statistics
import time

from bench.common import Service, summary, wait_until

PROMPT = "Write a long story about a dragon who lived in the mountains. Once upon a time,"
CHECKPOINTS = {"on": {"CHECKPOINT_TOKENS": "32", "CHECKPOINT_MS": "500"}}
CHECKPOINTS["off"] = {"CHECKPOINT_TOKENS": "0", "CHECKPOINT_MS": "0"}
PREEMPTION = {"on": {"PREEMPT_PRIORITY_GAP": "10"}, "off": {"PREEMPT_PRIORITY_GAP": "0"}}


def scheduling(url: str, size: dict) -> dict:
    return {
        "checkpoints": _checkpoint_cost(url, size),
        "preemption": _preemption(url, size),
    }


def _submit(svc: Service, session, max_tokens: int, priority: int = 0) -> str:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": PROMPT,
        "priority": priority,
        "params": {"max_tokens": max_tokens, "temperature": 0},
    }
    return svc.post("/api/v1/tasks", body, session=session).json()["task_id"]


def _final(svc: Service, session, task_id: str) -> dict:
    path = f"/api/v1/tasks/{task_id}/report"
    return wait_until(
        lambda: (
            (r := svc.get(path, session=session).json())["status"] in ("completed", "failed") and r
        ),
        timeout=600,
        what=f"task {task_id}",
    )


def _warm(svc: Service, session) -> None:
    _final(svc, session, _submit(svc, session, 4))


def _tokens_per_s(svc: Service, session, clients: int, tokens: int) -> float:
    ids = [_submit(svc, session, tokens) for _ in range(clients)]
    started = time.time()
    done = [_final(svc, session, t) for t in ids]
    generated = sum(r["usage"]["completion_tokens"] for r in done)
    return generated / (time.time() - started)


def _turns(reps: int):
    """(rep, config) in alternating order, so machine drift hits both alike."""
    for rep in range(reps):
        yield from ((rep, name) for name in (("on", "off") if rep % 2 == 0 else ("off", "on")))


def _checkpoint_cost(url: str, size: dict) -> dict:
    import requests

    rates: dict[str, list[float]] = {"on": [], "off": []}
    svc, session = Service(redis_url=url), requests.Session()
    try:
        svc.web()
        for _, name in _turns(size["reps"]):  # one web; the worker restarts per setting
            svc.worker("gpu", "gpu", GPU_SLOTS="4", **CHECKPOINTS[name])
            _warm(svc, session)
            rates[name].append(_tokens_per_s(svc, session, 4, size["tokens"]))
            svc.stop("gpu")
            print(f"[bench] checkpoints {name}: {rates[name][-1]:.1f} tok/s", flush=True)
    finally:
        svc.stop_all()
    ratio = statistics.median(rates["on"]) / statistics.median(rates["off"])
    return {
        "tokens": size["tokens"],
        "on_tokens_per_s": summary(rates["on"]),
        "off_tokens_per_s": summary(rates["off"]),
        "ratio": round(ratio, 3),
    }


def _urgent_wait(svc: Service, session, low_tokens: int) -> tuple[float, dict]:
    low = [_submit(svc, session, low_tokens) for _ in range(2)]
    wait_until(
        lambda: all(
            svc.get(f"/api/v1/tasks/{t}", session=session).json()["status"] == "processing"
            for t in low
        ),
        what="two running slots",
    )
    time.sleep(0.5)  # both past their prefill, generating
    report = _final(svc, session, _submit(svc, session, 8, priority=50))
    for task_id in low:
        _final(svc, session, task_id)
    timings = report["timings"]
    return timings["queue_wait_ms"] + (timings.get("queue_ms") or 0), timings


def _preemption(url: str, size: dict) -> dict:
    import requests

    waits: dict[str, list[float]] = {"on": [], "off": []}
    engine_queue: list[float] = []
    svc, session = Service(redis_url=url), requests.Session()
    try:
        svc.web()
        for _, name in _turns(size["reps"]):
            svc.worker("gpu", "gpu", GPU_SLOTS="2", **PREEMPTION[name])
            _warm(svc, session)
            wait_ms, timings = _urgent_wait(svc, session, size["low_tokens"])
            svc.stop("gpu")
            waits[name].append(wait_ms)
            if name == "on":
                engine_queue.append(timings.get("queue_ms") or 0)
            print(f"[bench] preemption {name}: urgent waited {wait_ms:.0f} ms", flush=True)
    finally:
        svc.stop_all()
    return {
        "low_tokens": size["low_tokens"],
        "urgent_wait_ms_on": summary(waits["on"]),
        "urgent_wait_ms_off": summary(waits["off"]),
        "urgent_slot_wait_ms_on": summary(engine_queue),
        "speedup": round(statistics.median(waits["off"]) / statistics.median(waits["on"]), 1),
    }


def scheduling_lines(r: dict) -> list[str]:
    c, p = r["checkpoints"], r["preemption"]
    from bench.report import _s

    return [
        "**Scheduling** (issue 29)",
        "",
        f"- checkpoints every 32 tokens: {_s(c['on_tokens_per_s'], ' tok/s')} vs off "
        f"{_s(c['off_tokens_per_s'], ' tok/s')} (4 clients, {c.get('tokens', 128)} tokens): "
        f"{c['ratio']}x",
        f"- a priority-50 task behind two running {p.get('low_tokens', 256)}-token tasks "
        "(GPU_SLOTS=2) waits "
        f"{_s(p['urgent_wait_ms_on'], ' ms')} with preemption, "
        f"{_s(p['urgent_wait_ms_off'], ' ms')} without; in the engine's queue "
        f"{_s(p['urgent_slot_wait_ms_on'], ' ms')}",
        "",
    ]
