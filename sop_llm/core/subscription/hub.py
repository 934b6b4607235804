"""One subscribed Redis connection per event loop, shared by every async subscription.

A connection and a client per request cost the web ~1 ms of CPU each (TCP connect, handshake,
close) and came in bursts: at 32 streams a round, the burst of new requests queued behind them.
Here a subscribe is one SUBSCRIBE on a connection already open, and one reader task hands each
message to the queues of the subscriptions on its channel. A reader that fails hands the error
to every subscription (as a lost connection of its own did) and the hub starts afresh on the
next subscribe."""

import asyncio
import contextlib
import json
import weakref

from sop_llm.core.redis import get_async_redis
from sop_llm.core.subscription.policy import lost


class Hub:
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
        except Exception as exc:  # the connection is lost: every subscription hears it
            self._fail(lost(exc, "the subscription"))
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
            decoded = json.loads(message["data"])
            for queue in self.queues.get(channel, ()):
                queue.put_nowait(decoded)

    def _fail(self, error: Exception) -> None:
        for future in [f for pending in self.confirming.values() for f in pending]:
            if not future.done():
                future.set_exception(error)
        for queue in {id(q): q for qs in self.queues.values() for q in qs}.values():
            queue.put_nowait(error)
        self.confirming, self.queues = {}, {}


# asyncio connections belong to the loop that made them: one hub per loop.
_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def shared_hub() -> Hub:
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]
