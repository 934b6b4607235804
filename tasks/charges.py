"""What a task's attempts cost, every one of them. A failed, truncated, cancelled or killed
attempt used the GPU (or a remote's tokens) like a successful one, so a final task carries
`charged` -- the sum over its attempts, killed runs included -- which its owner's
tokens_per_day, the usage rows and the metrics count, and which its report shows."""

import time

COSTS = ("prompt_tokens", "completion_tokens", "generation_ms")


def charged(attempts: list[dict]) -> dict:
    """The total of what the attempts cost (an unknown count, None, adds nothing)."""
    total = {name: sum(a.get(name) or 0 for a in attempts) for name in COSTS}
    total["generation_ms"] = round(total["generation_ms"], 1)
    total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
    return {**total, "attempts": len(attempts)}


def charged_of(fields: dict) -> dict:
    """A final change's `charged`, or (a task finished without attempts) its usage."""
    if fields.get("charged"):
        return fields["charged"]
    usage = fields.get("usage") or {}
    prompt, completion = (int(usage.get(n) or 0) for n in ("prompt_tokens", "completion_tokens"))
    timings = fields.get("timings") or {}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "generation_ms": timings.get("generation_ms") or 0,
    }


def token_counts(fields: dict) -> dict:
    """The metrics' token counters for a final change."""
    used = charged_of(fields)
    return {"tokens_in": used["prompt_tokens"], "tokens_out": used["completion_tokens"]}


def killed_attempt(task, why: str) -> dict:
    """The attempt a lost worker was running, with what it recorded of its progress."""
    progress = task.progress or {}
    this_run = progress.get("run") == task.run
    return {
        "provider": task.provider,
        "model": task.model,
        "try_number": progress.get("attempt", 1) if this_run else 1,
        "started_at": task.started_at,
        "duration_ms": round((time.time() - (task.started_at or time.time())) * 1000, 1),
        "outcome": "killed",
        "error_code": "worker_lost",
        "error_class": "retryable",
        "message": why,
        "prompt_tokens": None,  # not recorded before the worker died
        "completion_tokens": progress.get("tokens", 0) if this_run else 0,
        "generation_ms": None,
    }
