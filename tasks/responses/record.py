"""A response's own record beside its task: what the Responses API echoes back and what a
later `previous_response_id` prepends. Kept as long as the task (SESSION_TTL_HOURS)."""

import json

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import store

ECHO = (
    "model",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "metadata",
    "user",
    "safety_identifier",
    "background",
    "store",
    "previous_response_id",
    "stream",
)


def record_of(body: dict, items: list[dict]) -> dict:
    """The stored record: this request's own input items and the fields echoed back (as the
    caller sent them: tool_choice, tools and text in the Responses shape)."""
    record = {name: body[name] for name in ECHO if body.get(name) is not None}
    return {**record, "input": items}


def record_save(task_id: str, record: dict) -> None:
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    get_redis().set(keys.response(task_id), text, ex=store.session_ttl())


def record_load(task_id: str) -> dict | None:
    raw = get_redis().get(keys.response(task_id))
    return json.loads(raw) if raw else None


def record_delete(task_id: str) -> None:
    get_redis().delete(keys.response(task_id), keys.response_events(task_id))
