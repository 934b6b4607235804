"""Who is running a task: the rq worker's name, or this process when run outside a worker."""

import os
import socket

_current: str | None = None


def set_current_worker_name(name: str | None) -> None:
    global _current
    _current = name


def current_worker_name() -> str:
    return _current or f"proc-{socket.gethostname()}-{os.getpid()}"
