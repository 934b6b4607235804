"""Waiting for a task without polling: subscribe to its own channel, then read its state.

Subscribing first and reading second means no final event can slip between the two.
"""

import json
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from sop_llm import keys
from sop_llm.redis import get_async_redis
from tasks import store
from tasks.presenters import task_public

FINAL_EVENTS = frozenset(f"task.{status}" for status in store.FINAL)
MAX_WAIT_SECONDS = 300


async def read_task(client: aioredis.Redis, task_id: str) -> dict | None:
    raw = await client.hgetall(keys.session(task_id))
    return task_public(store.Task.from_hash(raw)) if raw else None


class TaskEvents:
    """An open subscription to one task's events (use `async with`)."""

    def __init__(self, task_id: str, *, tokens: bool = False):
        self.task_id = task_id
        self.channels = [keys.pubsub_task(task_id)]
        if tokens:
            self.channels.append(keys.pubsub_task_tokens(task_id))
        self.client = get_async_redis()
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)

    async def __aenter__(self) -> "TaskEvents":
        await self.pubsub.subscribe(*self.channels)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.pubsub.aclose()
        await self.client.aclose()

    async def task(self) -> dict | None:
        return await read_task(self.client, self.task_id)

    async def events(self, timeout: float) -> AsyncIterator[dict]:
        """Events until `timeout` seconds pass (then the iterator simply ends)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = await self.pubsub.get_message(timeout=min(left, 1.0))
            if message is not None:
                yield json.loads(message["data"])


async def wait_for_task(task_id: str, seconds: float, events: TaskEvents | None = None) -> dict:
    """The task once it is final, or as it stands after `seconds`."""
    async with events or TaskEvents(task_id) as sub:
        task = await sub.task()
        if task is None or task["status"] in store.FINAL:
            return task
        async for event in sub.events(min(seconds, MAX_WAIT_SECONDS)):
            if event["type"] in FINAL_EVENTS:
                break
        return await sub.task()
