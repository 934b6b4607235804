"""Events for the WebSocket monitor and for waiting callers: one JSON message per change.

Task events go to `pubsub:events` (everyone) and `pubsub:task:{id}` (that task's waiters).
Tokens are published from a background thread, so the generation loop never waits on Redis.
"""

import json
import logging
import queue
import threading
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
    target = pipe if pipe is not None else get_redis().pipeline(transaction=False)
    target.publish(keys.pubsub_events(), message)
    if data.get("task_id"):
        channel = keys.pubsub_task_tokens if type_ == "task.token" else keys.pubsub_task
        target.publish(channel(data["task_id"]), message)
    if pipe is not None:
        return
    try:
        target.execute()
    except redis.RedisError as exc:
        log.warning("event %s not published: %s", type_, exc)


class TokenStream:
    """Publishes `task.token` events in order, off the caller's thread, coalescing pieces
    that pile up while Redis is busy. `close()` flushes, so tokens precede the final event.

    Each event names its `run` (a requeued task runs again) and `attempt` (a fallback starts
    over), so a reader never mistakes two generations for one answer."""

    _STOP = object()

    def __init__(self, task_id: str, run: int = 1):
        self.task_id = task_id
        self.run = run
        self.index = 0
        self.attempt = 1
        self._pieces: list[str] = []  # of the current attempt: kept if the task is cancelled
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first token only

    def __call__(self, text: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"tokens-{self.task_id[:8]}", daemon=True
            )
            self._thread.start()
        self._pieces.append(text)
        self._queue.put((self.attempt, text))

    def next_attempt(self) -> None:
        self.attempt += 1
        self._pieces = []

    @property
    def attempt_text(self) -> str:
        return "".join(self._pieces)

    @property
    def attempt_tokens(self) -> int:
        return len(self._pieces)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(self._STOP)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            pieces = [self._queue.get()]
            while not self._queue.empty():
                pieces.append(self._queue.get())
            if pieces[-1] is self._STOP:
                stopping = True
                pieces.pop()
            for attempt in sorted({a for a, _ in pieces}):
                same = [text for a, text in pieces if a == attempt]
                self._send(attempt, "".join(same), len(same))

    def _send(self, attempt: int, text: str, count: int) -> None:
        pipe = get_redis().pipeline(transaction=False)
        publish(
            "task.token",
            pipe=pipe,
            task_id=self.task_id,
            text=text,
            index=self.index,
            tokens=count,
            run=self.run,
            attempt=attempt,
        )
        self.index += count
        # In the same round trip: how far this run got, so a run whose worker is killed is
        # still charged what it generated (tasks.recovery reads it).
        progress = {"run": self.run, "attempt": attempt, "tokens": self.index}
        pipe.hset(keys.session(self.task_id), "progress", json.dumps(progress))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("tokens of %s not published: %s", self.task_id, exc)
