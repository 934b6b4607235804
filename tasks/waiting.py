"""Waiting for a task without polling: subscribe to its own channel, then read its state.

Subscribing first and reading second means no final event can slip between the two.

A wait never outlives Redis: every read has the service's socket timeout, and a subscription
silent for SILENCE_CHECK_SECONDS pings Redis (with that timeout) before it goes on listening, so
a Redis that stopped answering raises redis.TimeoutError within seconds instead of leaving the
wait (and its HTTP request) hanging. A wait does ride out a blip (a Redis restart, a
failover): a lost connection is re-subscribed, then the task read again (so no final event is
missed), for up to REDIS_RECONNECT_GRACE_SECONDS; a client answered 503 for a one-second blip
would submit the task again and run it twice.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import redis
import redis.asyncio as aioredis
from django.conf import settings

from sop_llm import keys
from sop_llm.redis import SOCKET_TIMEOUT_SECONDS, get_async_redis
from tasks import store
from tasks.presenters import task_public

FINAL_EVENTS = frozenset(f"task.{status}" for status in store.FINAL)
MAX_WAIT_SECONDS = 300
SILENCE_CHECK_SECONDS = 3.0
RECONNECT_PAUSE_SECONDS = 0.2


async def bounded(awaitable, what: str):
    """`awaitable`, or redis.TimeoutError once Redis has had its socket timeout to answer."""
    try:
        return await asyncio.wait_for(awaitable, SOCKET_TIMEOUT_SECONDS)
    except TimeoutError:
        raise redis.TimeoutError(f"Redis did not answer {what}") from None


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
        try:
            await bounded(self.pubsub.subscribe(*self.channels), "a subscribe")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            await bounded(self.pubsub.aclose(), "closing a subscription")
            await bounded(self.client.aclose(), "closing a client")

    async def task(self) -> dict | None:
        return await bounded(read_task(self.client, self.task_id), "a task read")

    async def events(self, timeout: float) -> AsyncIterator[dict]:
        """Events until `timeout` seconds pass (then the iterator simply ends); a Redis that
        stops answering raises redis.RedisError."""
        deadline = time.monotonic() + timeout
        heard = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            message = await self.pubsub.get_message(timeout=min(left, 1.0))
            if message is not None:
                heard = time.monotonic()
                yield json.loads(message["data"])
            elif time.monotonic() - heard > SILENCE_CHECK_SECONDS:
                await bounded(self.client.ping(), "a ping")
                heard = time.monotonic()


async def wait_for_task(task_id: str, seconds: float, events: TaskEvents | None = None) -> dict:
    """The task once it is final, or as it stands after `seconds`. Redis lost for longer than
    REDIS_RECONNECT_GRACE_SECONDS in a row raises redis.RedisError (or OSError)."""
    deadline, lost_since = time.monotonic() + seconds, None
    while True:
        try:
            return await _wait_once(task_id, deadline, events or TaskEvents(task_id))
        except (redis.RedisError, OSError):
            now = time.monotonic()
            lost_since = lost_since or now
            if now - lost_since >= settings.REDIS_RECONNECT_GRACE_SECONDS or now >= deadline:
                raise
        events = None  # a fresh client and subscription for the next try
        await asyncio.sleep(RECONNECT_PAUSE_SECONDS)


async def _wait_once(task_id: str, deadline: float, events: TaskEvents) -> dict | None:
    async with events as sub:
        task = await sub.task()
        if task is None or task["status"] in store.FINAL:
            return task
        async for event in sub.events(deadline - time.monotonic()):
            if event["type"] in FINAL_EVENTS:
                break
        return await sub.task()
