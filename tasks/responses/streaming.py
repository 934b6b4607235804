"""Reading a response's event stream as Server-Sent Events: from any sequence number, live
until its terminal event. A reader that finds nobody recording takes the recording over."""

import json
from collections.abc import AsyncIterator

import redis

from sop_llm.core import keys
from sop_llm.core.redis import get_async_redis
from sop_llm.core.subscription import bounded
from tasks.responses.events import TERMINAL_TYPES, error
from tasks.responses.recorder import recorder_start
from tasks.waiting import TaskEvents

BLOCK_MS = 1000
BATCH = 200


def sse(event: dict) -> str:
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n"


async def follow(task_id: str, record: dict, after: int) -> AsyncIterator[dict]:
    """The events after sequence number `after` (-1: all), then the live ones."""
    client, last = get_async_redis(), f"0-{after + 1}"
    stream = keys.response_events(task_id)
    try:
        while True:
            found = await client.xread({stream: last}, block=BLOCK_MS, count=BATCH)
            for _, entries in found:
                for entry_id, fields in entries:
                    last, event = entry_id, json.loads(fields["e"])
                    yield event
                    if event["type"] in TERMINAL_TYPES:
                        return
            if not found and not await _take_over_if_orphaned(client, task_id, record):
                yield error("response_expired", "the response expired before its end")
                return
    finally:
        await client.aclose()


async def _take_over_if_orphaned(client, task_id: str, record: dict) -> bool:
    """-> False when there is nothing left to record (the task expired)."""
    if await bounded(client.exists(keys.response_recorder(task_id)), "the lock"):
        return True
    if not await bounded(client.exists(keys.session(task_id)), "a task read"):
        return False
    events = TaskEvents(task_id, tokens=True)
    await events.__aenter__()
    await recorder_start(task_id, record, events, resume=True)
    return True


async def sse_stream(task_id: str, record: dict, after: int, on_drop=None) -> AsyncIterator[str]:
    """`follow` as SSE text; `on_drop` runs when the client leaves before the end."""
    ended = False
    try:
        async for event in follow(task_id, record, after):
            ended = event["type"] in TERMINAL_TYPES
            yield sse(event)
    except (redis.RedisError, OSError):
        ended = True  # the response goes on; resume from the last sequence number
        yield sse(error("redis_unavailable", "Redis stopped answering; resume later"))
    finally:
        if not ended and on_drop is not None:
            await on_drop()
