"""Who is running a task: the rq worker's name, or this process when run outside a worker."""

import os
import threading

from sop_llm.core.procs import hostname

_current: str | None = None
_running: set[str] = set()  # task ids this process works on now: its liveness record says so
_stopping = threading.Event()  # a warm shutdown was asked for: admit no new task


def set_current_worker_name(name: str | None) -> None:
    global _current
    _current = name


def current_worker_name() -> str:
    return _current or f"proc-{hostname()}-{os.getpid()}"


def running_add(task_id: str) -> None:
    _running.add(task_id)


def running_remove(task_id: str) -> None:
    _running.discard(task_id)


def running() -> list[str]:
    return sorted(_running)


def stop_requested() -> None:
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()
