"""Fair share between owners within one priority: what a task costs its owner's counter.

The order itself is kept by the scripts (tasks/lua/create.lua places a task, claim.lua moves
the clock); this module says how many units a task is charged: its tokens (prompt + max_tokens
when it is queued, estimated; prompt + generated once it is final) over its owner's share
(`limits.share` of a managed key, default 1). A final task's counter is corrected to what it
really used in the same step as its final status, which moves the owner's later tasks.
"""

import json
import math

from sop_llm.access.principals import Limits
from sop_llm.core import keys
from tasks.charges import charged_of
from tasks.queue import band
from tasks.store import Effects, Task

# An idle owner's counter is worth nothing once the lane's clock has passed it: forgotten
# after a day (longer than any task of its may still wait: SESSION_TTL_HOURS defaults to 24).
OWNERS_TTL_SECONDS = 2 * 86400
CHARS_PER_TOKEN = 4  # the estimate of a prompt's tokens before any tokenizer has seen it


def share_of(limits: Limits | None) -> int:
    return (limits.share if limits else None) or 1


def units(tokens: int, share: int) -> int:
    """A task's charge in the fair-share order: at least 1, so an owner's places increase."""
    return max(1, math.ceil(tokens / share))


def prompt_estimate(data: dict) -> int:
    prompt = data.get("messages") or data.get("prompt") or ""
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
    return len(text) // CHARS_PER_TOKEN


def fair_effects(effects: Effects, task: Task, fields: dict) -> None:
    """A final task's correction: its owner's counter moves by what it really used minus
    what it was charged when queued (a cancelled-while-queued task gives all of it back)."""
    if not task.fair_units:
        return  # queued before fair share existed
    used = charged_of(fields)
    real = math.ceil((used["prompt_tokens"] + used["completion_tokens"]) / (task.share or 1))
    counter = f"{band(task.priority)}|{task.owner}"
    effects.hincrby(keys.queue_fair_owners(task.lane), counter, real - task.fair_units)
