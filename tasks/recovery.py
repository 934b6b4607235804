"""Crash recovery: no task stays `processing` after its worker is gone.

Workers refresh `worker:alive:{name}` (pid, host) every few seconds. A task in a lane's
processing hash whose worker has no live key -- or whose pid is gone on this very host -- is
requeued (up to TASK_MAX_ATTEMPTS runs) or failed with `worker_lost`. Runs at worker start-up and
periodically from every worker's heartbeat thread (one at a time, under a Redis lock).
"""

import json
import logging
import os
import socket

from django.conf import settings
from rq import Worker

from sop_llm import keys
from sop_llm.redis import get_redis
from tasks import queue, store

log = logging.getLogger(__name__)


def alive_record(name: str, lanes: list[str]) -> str:
    return json.dumps(
        {"name": name, "pid": os.getpid(), "host": socket.gethostname(), "lanes": lanes}
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_alive(name: str, record: str | None = None) -> bool:
    record = record if record is not None else get_redis().get(keys.worker_alive(name))
    if not record:
        return False
    info = json.loads(record)
    if info.get("host") == socket.gethostname():
        return _pid_alive(int(info["pid"]))
    return True


def live_workers(lane: str) -> list[dict]:
    names = [k.rsplit(":", 1)[-1] for k in Worker.all_keys(queue=queue.rq_queue(lane))]
    if not names:
        return []
    records = get_redis().mget([keys.worker_alive(n) for n in names])
    return [json.loads(r) for r in records if r and worker_alive("", r)]


def tasks_recover() -> dict:
    """Requeue or fail tasks whose worker died; wake lanes whose jobs were lost."""
    report = {"requeued": [], "failed": [], "woken": {}}
    for lane in queue.LANES:
        for task_id, worker in queue.processing(lane).items():
            if not worker_alive(worker):
                _recover_task(task_id, lane, worker, report)
        missing = queue.depth(lane) - queue.rq_queue(lane).count
        if missing > 0:
            queue.wake(lane, missing)
            report["woken"][lane] = missing
    return report


def _recover_task(task_id: str, lane: str, worker: str, report: dict) -> None:
    from tasks.processor import _fail, task_requeue

    task = store.load(task_id)
    if task is None or task["status"] != "processing":
        queue.release(lane, task_id)
        return
    runs = int(task.get("crash_count") or 0) + 1
    log.warning(
        "task %s lost its worker %s (run %d of at most %d)",
        task_id,
        worker,
        runs,
        settings.TASK_MAX_ATTEMPTS,
    )
    if runs < settings.TASK_MAX_ATTEMPTS and task_requeue(
        task_id=task_id, lane=lane, reason="worker_lost"
    ):
        report["requeued"].append(task_id)
        return
    _fail(
        task_id,
        lane,
        "worker_lost",
        f"the worker running this task died ({runs} run(s); TASK_MAX_ATTEMPTS="
        f"{settings.TASK_MAX_ATTEMPTS})",
    )
    report["failed"].append(task_id)


def tasks_recover_if_due(ttl_seconds: int) -> dict | None:
    """Run recovery unless another process did so within `ttl_seconds`."""
    if not get_redis().set(keys.recovery_lock(), os.getpid(), nx=True, ex=ttl_seconds):
        return None
    return tasks_recover()
