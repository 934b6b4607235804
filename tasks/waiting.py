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
import weakref
from collections.abc import AsyncIterator

import redis
import redis.asyncio as aioredis
from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.redis import SOCKET_TIMEOUT_SECONDS, get_async_redis
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


class _Hub:
    """One subscribed Redis connection per event loop, shared by every wait of the process.

    A connection and a client per request cost the web ~1 ms of CPU each (TCP connect,
    handshake, close) and came in bursts: at 32 streams a round, the burst of new requests
    queued behind them. Here a subscribe is one SUBSCRIBE on a connection already open, and one
    reader task hands each message to the queues of the waits on its channel. A reader that
    fails hands its error to every wait (as a lost connection of its own did) and the hub
    starts afresh on the next subscribe."""

    def __init__(self) -> None:
        self.client = get_async_redis()  # for reads and pings; shared, never closed by a wait
        # One reader, many senders on the subscribed connection: no health check may read.
        self.subscriber = get_async_redis(health_check_interval=0)
        self.pubsub = None
        self.queues: dict[str, list[asyncio.Queue]] = {}
        self.confirming: dict[str, list[asyncio.Future]] = {}
        self.reader: asyncio.Task | None = None
        self.lock = asyncio.Lock()

    async def subscribe(self, channels: list[str], queue: asyncio.Queue) -> None:
        """Returns once Redis has confirmed every channel: no later publish is missed."""
        await self._connected()
        confirmed = [self._confirmation(channel) for channel in channels]
        for channel in channels:
            self.queues.setdefault(channel, []).append(queue)
        await self.pubsub.subscribe(*channels)
        await asyncio.gather(*confirmed)

    async def _connected(self) -> None:
        """A reader on an open connection (the first subscriber opens it, the rest wait)."""
        async with self.lock:
            if self.reader is None or self.reader.done():
                pubsub = self.subscriber.pubsub()
                await pubsub.connect()
                self.pubsub = pubsub
                self.reader = asyncio.get_running_loop().create_task(self._read(pubsub))

    def _confirmation(self, channel: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.confirming.setdefault(channel, []).append(future)
        return future

    async def unsubscribe(self, channels: list[str], queue: asyncio.Queue) -> None:
        idle = [c for c in channels if self._drop(c, queue)]
        if idle and self.reader is not None and not self.reader.done():
            await self.pubsub.unsubscribe(*idle)

    def _drop(self, channel: str, queue: asyncio.Queue) -> bool:
        """Forget `queue` on `channel`; True when nobody listens there any more."""
        queues = self.queues.get(channel, [])
        if queue in queues:
            queues.remove(queue)
        if queues:
            return False
        self.queues.pop(channel, None)
        return True

    async def _read(self, pubsub) -> None:
        try:
            while True:
                self._dispatch(await pubsub.get_message(timeout=None))
        except asyncio.CancelledError:  # its loop is closing (a test's, asgiref's): let go
            _hubs.pop(asyncio.get_running_loop(), None)
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await self.subscriber.aclose()
                await self.client.aclose()
            raise
        except Exception as exc:  # the connection is lost: every wait hears it
            self._fail(exc if isinstance(exc, redis.RedisError | OSError) else _lost(exc))
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _dispatch(self, message: dict | None) -> None:
        if message is None:
            return
        kind, channel = message["type"], message["channel"]
        if kind == "subscribe" and self.confirming.get(channel):
            future = self.confirming[channel].pop(0)
            if not future.done():
                future.set_result(None)
        elif kind == "message":
            event = json.loads(message["data"])
            for queue in self.queues.get(channel, ()):
                queue.put_nowait(event)

    def _fail(self, error: Exception) -> None:
        for future in [f for pending in self.confirming.values() for f in pending]:
            if not future.done():
                future.set_exception(error)
        for queue in {id(q): q for qs in self.queues.values() for q in qs}.values():
            queue.put_nowait(error)
        self.confirming, self.queues = {}, {}


def _lost(exc: Exception) -> redis.ConnectionError:
    return redis.ConnectionError(f"the subscription failed: {exc!r:.200}")


# asyncio connections belong to the loop that made them: one hub per loop.
_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub]" = weakref.WeakKeyDictionary()


def _hub() -> _Hub:
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = _Hub()
    return _hubs[loop]


class TaskEvents:
    """An open subscription to one task's events (use `async with`)."""

    def __init__(self, task_id: str, *, tokens: bool = False):
        self.task_id = task_id
        self.channels = [keys.pubsub_task(task_id)]
        if tokens:
            self.channels.append(keys.pubsub_task_tokens(task_id))
        self.queue: asyncio.Queue = asyncio.Queue()
        self.hub: _Hub | None = None
        self.client: aioredis.Redis | None = None

    async def __aenter__(self) -> "TaskEvents":
        self.hub = _hub()
        self.client = self.hub.client
        try:
            await bounded(self.hub.subscribe(self.channels, self.queue), "a subscribe")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        if self.hub is None:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            await bounded(self.hub.unsubscribe(self.channels, self.queue), "an unsubscribe")

    async def task(self) -> dict | None:
        return await bounded(read_task(self.client, self.task_id), "a task read")

    async def events(self, timeout: float) -> AsyncIterator[dict]:
        """Events until `timeout` seconds pass (then the iterator simply ends); a Redis that
        stops answering raises redis.RedisError."""
        deadline = time.monotonic() + timeout
        heard = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            event = await self._next(min(left, 1.0))
            if isinstance(event, Exception):
                raise event
            if event is not None:
                heard = time.monotonic()
                yield event
            elif time.monotonic() - heard > SILENCE_CHECK_SECONDS:
                await bounded(self.client.ping(), "a ping")
                heard = time.monotonic()

    async def _next(self, timeout: float):
        """The next event (or the hub's error); None after `timeout` seconds of silence."""
        if not self.queue.empty():  # the common case under load: no timer to arm
            return self.queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):  # no task per wait, as wait_for makes
                return await self.queue.get()
        except TimeoutError:
            return None

    def ready(self) -> list[dict]:
        """The events already here, without waiting (the hub's error raises)."""
        events = []
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if isinstance(event, Exception):
                raise event
            events.append(event)
        return events


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
