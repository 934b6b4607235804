"""`/ws/monitor`: task events, tokens, logs, model and GPU events, live.

One Redis subscription per connection feeds a bounded queue; a slow client loses its own
oldest-pending messages (and is told how many), never anyone else's, never a worker's time.
"""

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer

from sop_llm import jsonparse, keys
from sop_llm.auth import scope_client
from sop_llm.redis import get_async_redis

QUEUE_LIMIT = 1000
CLOSE_UNAUTHORIZED = 4401


class MonitorConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        if scope_client(self.scope) is None:
            # Accept first: a close before the handshake is an HTTP 403 that browsers report
            # without any code; after it, the client reads 4401 and knows the key is wrong.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.types: set[str] | None = None
        self.task_id: str | None = None
        self.dropped = 0
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.redis = get_async_redis()
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(keys.pubsub_events(), keys.pubsub_logs())
        await self.accept()
        self.tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._deliver())]

    async def receive(self, text_data=None, bytes_data=None):
        try:
            wanted = jsonparse.loads(text_data or "{}")  # bounded depth, finite numbers
            types = wanted.get("types")
            if types is not None and not (
                isinstance(types, list) and all(isinstance(t, str) for t in types)
            ):
                raise ValueError("types must be a list of strings")
        except (ValueError, AttributeError) as exc:
            await self.send(json.dumps({"type": "error", "message": f"bad filter: {exc}"}))
            return
        self.types = set(types) if types else None
        self.task_id = wanted.get("task_id") or None
        await self.send(json.dumps({"type": "filter.ok", "types": types, "task_id": self.task_id}))

    async def _pump(self):
        async for message in self.pubsub.listen():
            data = message["data"]
            if message["channel"] == keys.pubsub_logs():
                data = json.dumps({"type": "log", **json.loads(data)})
            if self.outbox.full():
                self.outbox.get_nowait()
                self.dropped += 1
            self.outbox.put_nowait(data)

    async def _deliver(self):
        while True:
            data = await self.outbox.get()
            if not self._wanted(data):
                continue
            if self.dropped:
                await self.send(json.dumps({"type": "dropped", "count": self.dropped}))
                self.dropped = 0
            await self.send(data)

    def _wanted(self, data: str) -> bool:
        if self.types is None and self.task_id is None:
            return True
        event = json.loads(data)
        if self.types is not None and event.get("type") not in self.types:
            return False
        return self.task_id is None or event.get("task_id") == self.task_id

    async def disconnect(self, code):
        for task in getattr(self, "tasks", []):
            task.cancel()
        if hasattr(self, "pubsub"):
            await self.pubsub.aclose()
            await self.redis.aclose()
