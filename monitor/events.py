"""Events for the WebSocket monitor and for waiting callers: one JSON message per change."""

import json
import logging
import time
from typing import Any

import redis

from sop_llm import keys
from sop_llm.redis import get_redis

log = logging.getLogger(__name__)


def event_message(type_: str, **data: Any) -> str:
    return json.dumps({"type": type_, "at": time.time(), **data}, separators=(",", ":"))


def publish(type_: str, pipe=None, **data: Any) -> None:
    """Fire-and-forget: a monitor that misses an event must never fail the task."""
    message = event_message(type_, **data)
    if pipe is not None:
        pipe.publish(keys.pubsub_events(), message)
        return
    try:
        get_redis().publish(keys.pubsub_events(), message)
    except redis.RedisError as exc:
        log.warning("event %s not published: %s", type_, exc)
