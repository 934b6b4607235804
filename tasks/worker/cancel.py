"""Cancellation of running tasks, heard over pub/sub so the generation loop checks only a flag."""

import atexit
import logging
import threading
import time

import redis

from sop_llm.core import keys
from sop_llm.core.redis import get_pubsub_redis, get_redis

log = logging.getLogger(__name__)
HEARD_SECONDS = 60.0


class CancelWatch:
    """One listener thread per worker process; `watch(task_id)` returns a cheap check."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._heard: dict[str, float] = {}  # recent cancels, for a task claimed just after
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._closing = threading.Event()
        atexit.register(self._closing.set)  # the interpreter is going: no more reconnects

    def listen(self) -> None:
        """Subscribe before claiming: then a cancel is either in the claimed task's own mark
        or heard by this listener (remembered a while), and no second read is needed."""
        self._ensure_listening()

    def watch(self, task_id: str, *, requested: bool) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events[task_id] = event
            heard = task_id in self._heard
        if requested or heard:
            event.set()
        return event

    def interrupt(self, task_id: str) -> None:
        """Stop a generation of this process from within (its task went elsewhere)."""
        with self._lock:
            event = self._events.get(task_id)
        if event is not None:
            event.set()

    def unwatch(self, task_id: str) -> None:
        with self._lock:
            self._events.pop(task_id, None)

    def _ensure_listening(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._listen, name="cancel-watch", daemon=True)
            self._thread.start()
        self._subscribed.wait(timeout=2)

    def _listen(self) -> None:
        while True:
            try:
                pubsub = get_pubsub_redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(keys.pubsub_cancel())
                self._subscribed.set()
                self._recheck()  # anything published while we were not listening
                for message in pubsub.listen():
                    self._on_cancel(message["data"])
            except redis.RedisError as exc:
                if self._closing.is_set():
                    return
                log.warning("cancel listener lost Redis (%s); resubscribing", exc)
                time.sleep(1)

    def _recheck(self) -> None:
        with self._lock:
            watched = list(self._events)
        for task_id in watched:
            if get_redis().hget(keys.session(task_id), "cancel_requested"):
                self._on_cancel(task_id)

    def _on_cancel(self, task_id: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._heard = {t: at for t, at in self._heard.items() if now - at < HEARD_SECONDS}
            self._heard[task_id] = now
            event = self._events.get(task_id)
        if event is not None:
            event.set()


_watch = CancelWatch()


def cancel_watch() -> CancelWatch:
    return _watch
