"""Session store: one Redis hash per task, its timeline, and guarded status transitions."""

import json
import time
from functools import cache
from typing import Any

from django.conf import settings

from sop_llm import keys
from sop_llm.redis import get_redis
from tasks import lua

FINAL = ("completed", "failed", "cancelled")
# new status -> statuses it may be entered from; anything else is refused
ALLOWED_FROM = {
    "queued": ("created", "processing"),  # processing -> queued: requeue after a lost worker
    "processing": ("queued",),
    "completed": ("processing",),
    "failed": ("created", "queued", "processing"),
    "cancelled": ("created", "queued", "processing"),
}
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
    "options_public",
)


@cache
def _script(source: str):
    return get_redis().register_script(source)


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


def decode(raw: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = dict(raw)
    for name in JSON_FIELDS:
        if data.get(name):
            data[name] = json.loads(data[name])
        else:
            data[name] = None
    return data


def load(task_id: str) -> dict[str, Any] | None:
    raw = get_redis().hgetall(keys.session(task_id))
    return decode(raw) if raw else None


def flat_args(fields: dict[str, Any]) -> list[str]:
    return [item for pair in encode(fields).items() for item in pair]


def transition(task_id: str, status: str, **fields: Any) -> tuple[bool, str]:
    """Move a task to `status` if its current status allows it. -> (done, previous status)."""
    stamp = {f"{status}_at": time.time()} if status in FINAL or status == "queued" else {}
    args = [status, ",".join(ALLOWED_FROM[status]), *flat_args({**stamp, **fields})]
    done, previous = _script(lua.TRANSITION)(keys=[keys.session(task_id)], args=args)
    return bool(done), previous


def update(task_id: str, **fields: Any) -> None:
    get_redis().hset(keys.session(task_id), mapping=encode(fields))


def timeline_add(task_id: str, event: str, pipe=None, **data: Any) -> None:
    entry = json.dumps({"at": time.time(), "event": event, **data}, separators=(",", ":"))
    target = pipe if pipe is not None else get_redis()
    target.rpush(keys.session_timeline(task_id), entry)


def timeline(task_id: str) -> list[dict]:
    return [json.loads(e) for e in get_redis().lrange(keys.session_timeline(task_id), 0, -1)]
