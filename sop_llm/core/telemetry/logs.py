"""Logs into Redis: `logs:recent` (last 1000), `logs:{task_id}` (TTL like the session), and
`pubsub:logs`. Records are shipped by a background thread: a slow or absent Redis never blocks
or breaks the code that logs."""

import contextvars
import json
import logging
import queue
import threading
import time
import weakref

from sop_llm.core import keys

RECENT_KEPT = 1000
QUEUE_LIMIT = 10_000
LINGER_SECONDS = 0.05
current_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "task_id", default=None
)


def log_record(record: logging.LogRecord) -> dict:
    task_id = getattr(record, "task_id", None) or current_task_id.get()
    return {
        "at": record.created,
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "task_id": task_id,
    }


_handlers: "weakref.WeakSet[RedisLogHandler]" = weakref.WeakSet()


def flush_logs() -> None:
    """Wait until every Redis log handler of this process has shipped what it holds."""
    for handler in list(_handlers):
        handler.flush()


class RedisLogHandler(logging.Handler):
    def __init__(self, level=logging.INFO):
        super().__init__(level)
        _handlers.add(self)
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_LIMIT)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._queue.put_nowait(log_record(record))
            with self._idle:
                self._pending += 1
        except queue.Full:
            pass  # Redis is far behind: drop rather than block the caller
        except Exception:
            self.handleError(record)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._ship, name="redis-logs", daemon=True
                    )
                    self._thread.start()

    def _ship(self) -> None:
        while True:
            batch = [self._queue.get()]
            # Linger a moment: the lines one task logs together ship in one round trip.
            deadline = time.monotonic() + LINGER_SECONDS
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                write_records(batch)
            except Exception:  # Redis down: these records are lost, the caller is not
                time.sleep(0.5)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until every record emitted so far has been written (or given up on)."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)


def write_records(records: list[dict]) -> None:
    from django.conf import settings

    from sop_llm.core.redis import get_redis

    pipe = get_redis().pipeline(transaction=False)
    for record in records:
        data = json.dumps(record, separators=(",", ":"))
        pipe.lpush(keys.logs_recent(), data)
        pipe.publish(keys.pubsub_logs(), data)
        if record["task_id"]:
            pipe.rpush(keys.logs_task(record["task_id"]), data)
            pipe.expire(keys.logs_task(record["task_id"]), settings.SESSION_TTL_HOURS * 3600)
    pipe.ltrim(keys.logs_recent(), 0, RECENT_KEPT - 1)
    pipe.execute()


def recent_logs(*, task_id: str | None, level: str | None, limit: int) -> list[dict]:
    from sop_llm.core.redis import get_redis

    order = logging.getLevelNamesMapping()
    floor = order.get(level.upper(), 0) if level else 0
    key = keys.logs_task(task_id) if task_id else keys.logs_recent()
    raw = get_redis().lrange(key, 0, RECENT_KEPT - 1)
    records = [json.loads(r) for r in raw]
    if task_id:
        records.reverse()  # newest first, like logs:recent
    records = [r for r in records if order.get(r["level"], 0) >= floor]
    return records[:limit]
