"""What a finished task costs its owner, written in the same atomic step as its final
status (tasks.lifecycle): usage per key/day/model, its open-task slot and its token
reservation given back, the tokens it really used charged to today.

What it used is `charged`: every attempt's tokens, failed, truncated, cancelled and killed
ones included (tasks.charges), not only the answer's `usage`: a failed local attempt took
as much GPU time as a successful one. Usage rows name the model by its catalog name (`gemma`
and `gemma-3-270m-q4_k_m` are one model, one row)."""

from sop_llm.access.apikeys.usage import USAGE_TTL_SECONDS, usage_field
from sop_llm.core import keys
from tasks.charges import charged_of
from tasks.quota import TOKENS_TTL_SECONDS, day_of
from tasks.store import Effects, Task


def usage_effects(effects: Effects, task: Task, fields: dict) -> None:
    if not task.owner:
        return
    owner, today = task.owner, day_of()
    used = charged_of(fields)
    prompt, completion = used["prompt_tokens"], used["completion_tokens"]
    effects.srem(keys.principal_open(owner), task.task_id)
    if task.reserved_tokens:
        reserved_on = keys.principal_tokens(owner, day_of(task.created_at))
        effects.incrby(reserved_on, -task.reserved_tokens)
    charged = keys.principal_tokens(owner, today)
    effects.incrby(charged, prompt + completion).expire(charged, TOKENS_TTL_SECONDS)
    counters = {"tasks": 1, "prompt_tokens": prompt, "completion_tokens": completion}
    model, seconds = task.model_key or task.model, _local_generation_seconds(task, used)
    for key in (keys.usage_day(today), keys.usage_total()):
        for counter, amount in counters.items():
            effects.hincrby(key, usage_field(owner, model, counter), amount)
        if seconds:
            effects.hincrbyfloat(key, usage_field(owner, model, "generation_seconds"), seconds)
    effects.expire(keys.usage_day(today), USAGE_TTL_SECONDS)


def _local_generation_seconds(task: Task, used: dict) -> float:
    """GPU time is what a local task costs; a remote provider bills its own tokens."""
    if task.lane != "gpu":
        return 0.0
    return (used.get("generation_ms") or 0) / 1000
