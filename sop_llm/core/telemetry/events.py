"""Events for the WebSocket monitor and for waiting callers: one JSON message per change.

Task events go to `pubsub:events` (everyone) and `pubsub:task:{id}` (that task's waiters).
Tokens are published from a background thread, so the generation loop never waits on Redis.
"""

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from sop_llm.core import keys
from sop_llm.core.redis import get_redis

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

    # A call is an append and a queue put, safe from any thread and never blocking: the local
    # engine calls it on its decode thread instead of waking the task's thread per token.
    runs_inline = True

    def __init__(self, task_id: str, run: int = 1, *, offset: int = 0):
        self.task_id = task_id
        self.run = run
        self.index = 0  # the publisher's to advance
        # Characters of the answer before the next event's text (the publisher's to advance):
        # a run resumed from a checkpoint starts where the checkpoint's streamed text ended.
        self.offset = self.resumed_at = offset
        self.attempt = 1
        self._pieces: list[str] = []  # of the current attempt: kept if the task is cancelled
        self._used = False

    def __call__(self, text: str) -> None:
        first, self._used = not self._used, True
        self._pieces.append(text)
        # A stream's first token goes out at once: it is what its caller waits for (time to
        # first token), while the publisher, busy with the other streams, gathers theirs.
        token_publisher().put((self, self.attempt, text), urgent=first)

    def next_attempt(self) -> None:
        self.attempt += 1
        self._pieces = []

    def checkpoint(self, tokens: list[int], emitted: int) -> None:
        """Keep the generation's progress (Checkpointing.write): queued behind the tokens
        already streamed, so it is written in their round trip or after it."""
        token_publisher().put(Checkpoint(self, self.attempt, tokens, emitted))

    @property
    def attempt_text(self) -> str:
        return "".join(self._pieces)

    @property
    def attempt_tokens(self) -> int:
        return len(self._pieces)

    def close(self) -> None:
        if self._used:
            token_publisher().flush(timeout=5)


class TokenPublisher:
    """One thread per process publishes every task's tokens: whatever piled up since its last
    round trip, at most every TOKEN_FLUSH_MS (a few decode steps' worth for a batch of 32),
    goes out in one pipeline, each task's pieces of one attempt joined into one event.
    Per-task threads made a Redis round trip and a thread wake-up per token each."""

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._urgent = threading.Event()  # a flush: a task ends, its final event waits on it
        self._thread = threading.Thread(target=self._run, name="tokens", daemon=True)
        self._thread.start()

    def put(self, item: tuple, *, urgent: bool = False) -> None:
        self._queue.put(item)
        if urgent:
            self._urgent.set()

    def flush(self, timeout: float) -> None:
        """Returns once everything put before it is published (or `timeout` passed)."""
        done = threading.Event()
        self._queue.put(done)
        self._urgent.set()
        done.wait(timeout)

    def _run(self) -> None:
        from django.conf import settings

        last = 0.0
        while True:
            items = [self._queue.get()]
            # Streams under way: gather a few steps' tokens per event (each event costs the
            # web relay a Redis read, a JSON chunk and a write); the first after a pause, and a
            # flush, go out at once.
            self._urgent.wait(max(0.0, last + settings.TOKEN_FLUSH_MS / 1000 - time.monotonic()))
            self._urgent.clear()
            last = time.monotonic()
            while not self._queue.empty():
                items.append(self._queue.get())
            self._publish([i for i in items if not isinstance(i, threading.Event)])
            for flushed in (i for i in items if isinstance(i, threading.Event)):
                flushed.set()

    def _publish(self, items: list) -> None:
        if not items:
            return
        pipe = get_redis().pipeline(transaction=False)
        pieces = [i for i in items if isinstance(i, tuple)]
        for (stream, attempt), texts in _grouped(pieces).items():
            _token_event(pipe, stream, attempt, texts)
        # Only the newest checkpoint of each stream counts: it holds every token before it.
        latest = {id(c.stream): c for c in items if isinstance(c, Checkpoint)}
        for checkpoint in latest.values():
            checkpoint.write(pipe)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("%d token events not published: %s", len(items), exc)


def _grouped(items: list[tuple]) -> dict[tuple, list[str]]:
    """Pieces by (stream, attempt), in order (dicts keep insertion order)."""
    groups: dict[tuple, list[str]] = {}
    for stream, attempt, text in items:
        groups.setdefault((stream, attempt), []).append(text)
    return groups


def _token_event(pipe, stream: TokenStream, attempt: int, texts: list[str]) -> None:
    publish(
        "task.token",
        pipe=pipe,
        task_id=stream.task_id,
        text="".join(texts),
        index=stream.index,
        tokens=len(texts),
        run=stream.run,
        attempt=attempt,
        offset=stream.offset,
        **({"resumed_at": stream.resumed_at} if stream.resumed_at else {}),
    )
    stream.index += len(texts)
    stream.offset += sum(len(t) for t in texts)
    # In the same round trip: how far this run got, so a run whose worker is killed is still
    # charged what it generated (tasks.worker.recovery reads it).
    progress = {"run": stream.run, "attempt": attempt, "tokens": stream.index}
    pipe.hset(keys.session(stream.task_id), "progress", json.dumps(progress))


@dataclass(frozen=True)
class Checkpoint:
    """A local generation's progress: the token ids generated so far and how many characters
    of their text were streamed. A rerun of the task resumes from it (tasks.checkpoints)."""

    stream: TokenStream
    attempt: int
    tokens: list[int]
    emitted: int

    def record(self) -> dict:
        return {
            "run": self.stream.run,
            "attempt": self.attempt,
            "tokens": self.tokens,
            "emitted": self.emitted,
            "at": time.time(),
        }

    def write(self, pipe) -> None:
        from django.conf import settings

        value = json.dumps(self.record(), separators=(",", ":"))
        ttl = settings.SESSION_TTL_HOURS * 3600  # it goes with the session
        pipe.set(keys.session_checkpoint(self.stream.task_id), value, ex=ttl)


_publisher: tuple[int, TokenPublisher] | None = None
_publisher_lock = threading.Lock()


def token_publisher() -> TokenPublisher:
    """This process's publisher (a forked child, such as rq's work horse, starts its own)."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():
            _publisher = (os.getpid(), TokenPublisher())
        return _publisher[1]
