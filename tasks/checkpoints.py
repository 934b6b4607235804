"""Generation checkpoints: what a local run generated so far, kept beside its session.

The token publisher writes them (sop_llm.core.telemetry.events.Checkpoint) in the round trip of the
token events, at most every CHECKPOINT_TOKENS tokens or CHECKPOINT_MS; a preemption writes its
own in the requeue's atomic step. The next run of the task reads it back and resumes after
those tokens instead of starting over (models_gpu.engine.batching.Sequence.resume_after).
"""

import json
from dataclasses import dataclass

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.providers.types import Checkpointing, Resume
from tasks.store import Effects, Task


@dataclass(frozen=True)
class Kept:
    """A checkpoint as stored."""

    run: int
    attempt: int
    tokens: list[int]
    emitted: int

    @classmethod
    def of(cls, raw: str | None) -> "Kept | None":
        if not raw:
            return None
        data = json.loads(raw)
        return cls(int(data["run"]), int(data["attempt"]), list(data["tokens"]), data["emitted"])

    def summary(self) -> dict:
        """What the timeline and the requeue event say of it."""
        return {"tokens": len(self.tokens), "offset": self.emitted}


def checkpoint_load(*, task_id: str) -> Kept | None:
    return Kept.of(get_redis().get(keys.session_checkpoint(task_id)))


def resume_for(task: Task, kept: Kept | None) -> Resume | None:
    """The resume a new run of `task` gets: only from an earlier run's first attempt (the
    task's own model; a fallback's tokens belong to another one)."""
    if kept is None or kept.run >= task.run or kept.attempt != 1 or not kept.tokens:
        return None
    return Resume(model=task.model, tokens=tuple(kept.tokens), emitted=kept.emitted)


def checkpointing(write) -> Checkpointing | None:
    every, ms = settings.CHECKPOINT_TOKENS, settings.CHECKPOINT_MS
    return Checkpointing(every, ms, write) if every or ms else None


def checkpoint_effects(effects: Effects, task: Task, record: dict) -> None:
    """Write a checkpoint inside a transition (a preemption's requeue)."""
    value = json.dumps({"run": task.run, "attempt": 1, **record}, separators=(",", ":"))
    ttl = settings.SESSION_TTL_HOURS * 3600
    effects.set_ex(keys.session_checkpoint(task.task_id), value, ttl)


def checkpoint_drop(effects: Effects, task_id: str) -> None:
    """A final task resumes no more."""
    effects.delete(keys.session_checkpoint(task_id))
