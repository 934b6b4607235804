"""Session store: one Redis hash per task, read as a typed `Task`, and its timeline.

Status changes do not happen here: `tasks.lifecycle` owns them.
"""

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks.status import FINAL

# Request fields stored only when given (older tasks lack them; build_request takes defaults).
REQUEST_EXTRAS = (
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "on_max_tokens",
    "wire",
)
JSON_FIELDS = (
    "request",
    "result",
    "usage",
    "error",
    "attempts",
    "timings",
    "metadata",
    "repro",
    "webhook",
    "batch",
    "progress",
    "lost_attempts",
    "charged",
)


@dataclass
class Task:
    """A task as stored: every field typed once here, so no caller casts hash strings."""

    task_id: str
    status: str
    lane: str
    provider: str
    model: str
    model_key: str = ""
    priority: int = 0
    score: float = 0.0
    owner: str = ""  # the principal's id: whose limits it counts against, who alone sees it
    request: dict = field(default_factory=dict)
    secrets: str = ""
    metadata: Any = None
    webhook_url: str | None = None
    idempotency_key: str | None = None
    created_at: float | None = None
    queued_at: float | None = None
    deadline_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    cancelled_at: float | None = None
    finished_at: float | None = None
    cancel_requested: float | None = None
    worker: str | None = None
    crash_count: int = 0
    max_tokens: int = 0
    reserved_tokens: int = 0  # charged to its owner's tokens-per-day until it finishes
    passed_over: int = 0
    share: int = 0  # its owner's fair share when it was queued (tasks.fair)
    fair_units: int = 0  # what it was charged in the fair-share order when queued
    preemptions: int = 0  # times a more urgent task took its slot (tasks.preemption)
    run: int = 0
    result: dict | None = None
    usage: dict | None = None
    error: dict | None = None
    attempts: list | None = None
    timings: dict | None = None
    repro: dict | None = None
    webhook: dict | None = None
    batch: dict | None = None  # a Batch API line: {id, line, custom_id, ...} (tasks.batches)
    progress: dict | None = None  # {run, attempt, tokens} while it generates (TokenStream)
    lost_attempts: list | None = None  # the attempts of runs whose worker was lost
    charged: dict | None = None  # what every attempt cost, in total (tasks.charges)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> "Task":
        fields = {f.name: _typed(f, raw[f.name]) for f in _FIELDS if f.name in raw}
        fields["owner"] = owner_in(raw) or ""
        return cls(**fields)


# The owner's field, then its name in tasks written before it was `owner`: such a task, still
# within its TTL after an upgrade, keeps its owner.
OWNER_FIELDS = ("owner", "client")


def owner_in(raw: dict[str, str | None]) -> str | None:
    """The owner a session hash names (None: it names none), under either field name."""
    return next((raw[name] for name in OWNER_FIELDS if raw.get(name) is not None), None)


_FIELDS = dataclasses.fields(Task)
_INTS = {f.name for f in _FIELDS if f.type is int}
_FLOATS = {f.name for f in _FIELDS if f.type in (float, float | None)}


def _typed(spec: dataclasses.Field, value: str) -> Any:
    """Hash strings back to what was written: '' is None (or 0 for counters)."""
    if spec.name in JSON_FIELDS:
        return json.loads(value) if value else None
    if spec.name in _INTS:
        return int(value or 0)
    if spec.name in _FLOATS:
        return float(value) if value else None
    return value if value or spec.type is str else None


def session_ttl() -> int:
    return settings.SESSION_TTL_HOURS * 3600


def encode(fields: dict[str, Any]) -> dict[str, str]:
    """Hash values are strings: JSON for structures, '' for None."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, dict | list):
            out[name] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        elif value is None:
            out[name] = ""
        else:
            out[name] = str(value)
    return out


def flat_args(fields: dict[str, Any]) -> list[str]:
    return [item for pair in encode(fields).items() for item in pair]


def pairs_to_dict(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def load(task_id: str) -> Task | None:
    raw = get_redis().hgetall(keys.session(task_id))
    return Task.from_hash(raw) if raw else None


def update(task_id: str, **fields: Any) -> None:
    """Non-status fields only (webhook records, cancel marks)."""
    assert "status" not in fields, "status changes go through tasks.lifecycle"
    get_redis().hset(keys.session(task_id), mapping=encode(fields))


def timeline_entry(event: str, **data: Any) -> str:
    return json.dumps({"at": time.time(), "event": event, **data}, separators=(",", ":"))


def timeline_add(task_id: str, event: str, pipe=None, **data: Any) -> None:
    target = pipe if pipe is not None else get_redis()
    target.rpush(keys.session_timeline(task_id), timeline_entry(event, **data))


def timeline(task_id: str) -> list[dict]:
    return [json.loads(e) for e in get_redis().lrange(keys.session_timeline(task_id), 0, -1)]


class Effects:
    """Redis writes recorded like a pipeline's, to run inside a transition script: they happen
    in the same atomic step as the status change, and only if the change is allowed."""

    def __init__(self, ops: list[list[str]] | None = None) -> None:
        self.ops: list[list[str]] = ops or []

    def _add(self, *command: Any) -> "Effects":
        self.ops.append([str(part) for part in command])
        return self

    def rpush(self, key: str, value: str):
        return self._add("RPUSH", key, value)

    def lpush(self, key: str, value: Any):
        return self._add("LPUSH", key, value)

    def ltrim(self, key: str, start: int, end: int):
        return self._add("LTRIM", key, start, end)

    def publish(self, channel: str, message: str):
        return self._add("PUBLISH", channel, message)

    def append(self, key: str, value: str):
        return self._add("APPEND", key, value)

    def hset(self, key: str, name: str, value: Any):
        return self._add("HSET", key, name, value)

    def hincrby(self, key: str, name: str, amount: int = 1):
        return self._add("HINCRBY", key, name, amount)

    def hincrbyfloat(self, key: str, name: str, amount: float):
        return self._add("HINCRBYFLOAT", key, name, repr(float(amount)))

    def hdel(self, key: str, name: str):
        return self._add("HDEL", key, name)

    def expire(self, key: str, seconds: int):
        return self._add("EXPIRE", key, seconds)

    def zadd(self, key: str, mapping: dict[str, float]):
        for member, score in mapping.items():
            self._add("ZADD", key, repr(float(score)), member)
        return self

    def zrem(self, key: str, member: str):
        return self._add("ZREM", key, member)

    def srem(self, key: str, member: str):
        return self._add("SREM", key, member)

    def set_ex(self, key: str, value: str, seconds: int):
        return self._add("SET", key, value, "EX", seconds)

    def delete(self, key: str):
        return self._add("DEL", key)

    def incrby(self, key: str, amount: int):
        return self._add("INCRBY", key, amount)

    def encoded(self) -> str:
        return json.dumps(self.ops, separators=(",", ":"), ensure_ascii=False)
