"""`/ws/monitor`: task events, tokens, logs, model and GPU events, live.

One Redis subscription per connection feeds a bounded queue; a slow client loses its own
oldest-pending messages (and is told how many), never anyone else's, never a worker's time.

A `monitor` (or admin) key sees everything; a `tasks` key sees only its own tasks' events and
logs. A managed key is re-checked every REVALIDATE_SECONDS: a revoked or expired key's socket
is closed (4401) within a second, one that lost its scopes too (4403).
"""

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer

from sop_llm.access.auth import scope_client
from sop_llm.access.principals import AuthError, principal_from_hash, scope_refusal
from sop_llm.core import jsonparse, keys
from sop_llm.core.redis import get_async_redis
from tasks import store

QUEUE_LIMIT = 1000
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
REVALIDATE_SECONDS = 0.5
FILTER_FIELDS = {"types", "task_id"}
OWNERS_KEPT = 10_000


class MonitorConsumer(AsyncWebsocketConsumer):
    required_scope = ("monitor", "tasks")

    async def connect(self):
        principal = scope_client(self.scope)
        # Accept first: a close before the handshake is an HTTP 403 that browsers report
        # without any code; after it, the client reads 4401/4403 and knows why.
        if principal is None or not principal.allows(self.required_scope):
            await self.accept()
            await self.close(code=CLOSE_UNAUTHORIZED if principal is None else CLOSE_FORBIDDEN)
            return
        self.principal = principal
        self.owner_filter = _owner_filter(principal)
        self.owners: dict[str, str] = {}
        self.types: set[str] | None = None
        self.task_id: str | None = None
        self.dropped = 0
        self.outbox: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.redis = get_async_redis()
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(keys.pubsub_events(), keys.pubsub_logs())
        await self.accept()
        self.tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._deliver())]
        if principal.digest:
            self.tasks.append(asyncio.create_task(self._revalidate()))

    async def receive(self, text_data=None, bytes_data=None):
        try:
            wanted = _filter(text_data)
        except (ValueError, AttributeError) as exc:
            await self.send(json.dumps({"type": "error", "message": f"bad filter: {exc}"}))
            return
        types = wanted.get("types")
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
            if not await self._wanted(data):
                continue
            if self.dropped:
                await self.send(json.dumps({"type": "dropped", "count": self.dropped}))
                self.dropped = 0
            await self.send(data)

    async def _revalidate(self):
        """Re-read the key's record: revocation, expiry and scope changes reach an open
        socket too."""
        while True:
            await asyncio.sleep(REVALIDATE_SECONDS)
            raw = await self.redis.hgetall(keys.api_key(self.principal.digest))
            try:
                principal = principal_from_hash(raw, self.principal.digest)
            except AuthError as exc:
                return await self._refuse(exc.message, CLOSE_UNAUTHORIZED)
            if not principal.allows(self.required_scope):
                return await self._refuse(
                    scope_refusal(self.required_scope).message, CLOSE_FORBIDDEN
                )
            self.owner_filter = _owner_filter(principal)

    async def _refuse(self, message: str, code: int) -> None:
        await self.send(json.dumps({"type": "error", "message": message}))
        await self.close(code=code)

    async def _wanted(self, data: str) -> bool:
        if self.types is None and self.task_id is None and self.owner_filter is None:
            return True
        event = json.loads(data)
        if self.types is not None and event.get("type") not in self.types:
            return False
        if self.task_id is not None and event.get("task_id") != self.task_id:
            return False
        owner = self.owner_filter
        return owner is None or await self._owner(event.get("task_id")) == owner

    async def _owner(self, task_id: str | None) -> str | None:
        """Who owns a task (never changes, so it is remembered); None for events of no task."""
        if not task_id:
            return None
        if task_id not in self.owners:
            if len(self.owners) >= OWNERS_KEPT:
                self.owners.clear()
            fields = await self.redis.hmget(keys.session(task_id), store.OWNER_FIELDS)
            owner = store.owner_in(dict(zip(store.OWNER_FIELDS, fields, strict=True)))
            if owner is None:
                return None  # not remembered: the task may not be written yet
            self.owners[task_id] = owner
        return self.owners[task_id]

    async def disconnect(self, code):
        for task in getattr(self, "tasks", []):
            task.cancel()
        if hasattr(self, "pubsub"):
            await self.pubsub.aclose()
            await self.redis.aclose()


def _filter(text: str | None) -> dict:
    """The client's filter, checked: unknown fields are refused, not ignored."""
    wanted = jsonparse.loads(text or "{}")  # bounded depth, finite numbers
    if not isinstance(wanted, dict):
        raise ValueError('send a JSON object such as {"types": [...], "task_id": "..."}')
    unknown = sorted(set(wanted) - FILTER_FIELDS)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; a filter takes types and task_id")
    types = wanted.get("types")
    if types is not None and not (
        isinstance(types, list) and all(isinstance(t, str) for t in types)
    ):
        raise ValueError("types must be a list of strings")
    task_id = wanted.get("task_id")
    if task_id is not None and not isinstance(task_id, str):
        raise ValueError("task_id must be a string")
    return wanted


def _owner_filter(principal) -> str | None:
    """Whose tasks' events a key sees: any owner's (None) with the monitor scope, else its own."""
    return None if principal.allows(("monitor",)) else principal.id
