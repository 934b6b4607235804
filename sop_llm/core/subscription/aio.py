"""The event loop's flavour: a `Subscription` on the process's shared connection (hub.py)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import redis
import redis.asyncio as aioredis

from sop_llm.core.subscription import policy
from sop_llm.core.subscription.hub import Hub, shared_hub


async def bounded(awaitable: Awaitable, what: str):
    """`awaitable`, or RedisLost once Redis has had its socket timeout to answer (or failed)."""
    with policy.one_error(what):
        async with asyncio.timeout(policy.SOCKET_TIMEOUT_SECONDS):
            return await awaitable


class Subscription:
    """Messages on `channels` (decoded JSON) from the moment `async with` returns, Redis having
    confirmed the subscribe: read the state then (`read`), and wait (`messages`)."""

    def __init__(self, channels: list[str]):
        self.channels = list(channels)
        self.queue: asyncio.Queue = asyncio.Queue()  # messages, or the hub's error
        self.hub: Hub | None = None
        self.client: aioredis.Redis | None = None  # the hub's, for reads; never closed here

    async def __aenter__(self) -> "Subscription":
        if self.hub is not None:  # subscribed already: a caller may subscribe before the
            return self  # state it waits on exists, and wait later with the same one
        self.hub = shared_hub()
        self.client = self.hub.client
        try:
            await bounded(self.hub.subscribe(self.channels, self.queue), "a subscribe")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        hub, self.hub = self.hub, None
        if hub is None:
            return
        with contextlib.suppress(redis.RedisError, OSError):
            await bounded(hub.unsubscribe(self.channels, self.queue), "an unsubscribe")

    async def read(self, awaitable: Awaitable, what: str):
        """A read of the state (on `self.client`), bounded like every step."""
        return await bounded(awaitable, what)

    async def messages(self, timeout: float) -> AsyncIterator[dict]:
        """Messages until `timeout` seconds pass (then the iterator simply ends)."""
        clock = policy.Clock(timeout)
        while clock.left() > 0:
            message = await self._next(clock.step())
            if message is not None:
                clock.heard()
                yield message
            elif clock.ping_due():
                await bounded(self.client.ping(), "a ping")
                clock.heard()

    async def first(self, timeout: float) -> dict | None:
        """The first message within `timeout` seconds, or None."""
        async with contextlib.aclosing(self.messages(timeout)) as messages:
            async for message in messages:
                return message
        return None

    async def _next(self, timeout: float) -> dict | None:
        """The next message (the hub's error raises); None after `timeout` seconds."""
        if self.queue.empty():  # the common case under load is a message already here
            try:
                async with asyncio.timeout(timeout):  # no task per wait, as wait_for makes
                    item = await self.queue.get()
            except TimeoutError:
                return None
        else:
            item = self.queue.get_nowait()
        if isinstance(item, Exception):
            raise item
        return item

    def ready(self) -> list[dict]:
        """The messages already here, without waiting (the hub's error raises)."""
        messages = []
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if isinstance(item, Exception):
                raise item
            messages.append(item)
        return messages
