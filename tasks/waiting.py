"""Waiting for a task without polling: subscribe to its own channel, then read its state
(sop_llm.core.subscription: nothing published between the two is missed, every Redis step is
bounded, a silent subscription pings, a lost Redis raises RedisLost).

A wait does ride out a blip (a Redis restart, a failover): a lost connection is re-subscribed,
then the task read again (so no final event is missed), for up to
REDIS_RECONNECT_GRACE_SECONDS; a client answered 503 for a one-second blip would submit the task
again and run it twice.
"""

import asyncio
import time
from collections.abc import AsyncIterator

import redis
import redis.asyncio as aioredis
from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.subscription import Subscription
from tasks import store
from tasks.presenters import task_public

FINAL_EVENTS = frozenset(f"task.{status}" for status in store.FINAL)
MAX_WAIT_SECONDS = 300
RECONNECT_PAUSE_SECONDS = 0.2


async def read_task(client: aioredis.Redis, task_id: str) -> dict | None:
    raw = await client.hgetall(keys.session(task_id))
    return task_public(store.Task.from_hash(raw)) if raw else None


class TaskEvents(Subscription):
    """An open subscription to one task's events (use `async with`)."""

    def __init__(self, task_id: str, *, tokens: bool = False):
        channels = [keys.pubsub_task(task_id)]
        if tokens:
            channels.append(keys.pubsub_task_tokens(task_id))
        super().__init__(channels)
        self.task_id = task_id

    async def task(self) -> dict | None:
        return await self.read(read_task(self.client, self.task_id), "a task read")

    def events(self, timeout: float) -> AsyncIterator[dict]:
        """Events until `timeout` seconds pass (then the iterator simply ends)."""
        return self.messages(timeout)


async def wait_for_task(
    task_id: str, seconds: float, events: TaskEvents | None = None, *, known: dict | None = None
) -> dict:
    """The task once it is final, or as it stands after `seconds`. Redis lost for longer than
    REDIS_RECONNECT_GRACE_SECONDS in a row raises RedisLost (a redis.ConnectionError).

    `known`: the task as its creator wrote it, when `events` subscribed before it was created
    (then every change since is in `events`, and reading it back would tell nothing new)."""
    deadline, lost_since = time.monotonic() + seconds, None
    while True:
        try:
            return await _wait_once(task_id, deadline, events or TaskEvents(task_id), known)
        except (redis.RedisError, OSError):
            now = time.monotonic()
            lost_since = lost_since or now
            if now - lost_since >= settings.REDIS_RECONNECT_GRACE_SECONDS or now >= deadline:
                raise
        events, known = None, None  # a fresh subscription for the next try, and a read
        await asyncio.sleep(RECONNECT_PAUSE_SECONDS)


async def _wait_once(
    task_id: str, deadline: float, events: TaskEvents, known: dict | None
) -> dict | None:
    async with events as sub:
        task = known or await sub.task()
        if task is None or task["status"] in store.FINAL:
            return task
        async for event in sub.events(deadline - time.monotonic()):
            if event["type"] in FINAL_EVENTS:
                break
        return await sub.task()
