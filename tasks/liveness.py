"""Worker liveness as Redis tells it: who is alive, and which `processing` tasks nobody runs.

Workers refresh `worker:alive:{name}` (pid, host, the tasks they run now) every heartbeat. A
task in a lane's processing hash is lost when its worker has no live record, when the record's
pid is gone on this very host, or when the worker is alive but no longer runs it (it lost the
task in a Redis outage, say). Reads only: the web and the monitor ask here, and the worker's
recovery (tasks/worker/recovery.py) acts on the answer.
"""

import json
import time

from rq import Worker

from sop_llm.core import keys
from sop_llm.core.lanes import TASK_LANES, rq_queue
from sop_llm.core.procs import process_record, provably_dead
from sop_llm.core.redis import get_redis
from tasks import queue, store
from tasks.status import TaskStatus

# A record this much newer than a task's start must list the task, or the worker dropped it.
ORPHAN_MARGIN_SECONDS = 1.0


def alive_record(name: str, lanes: list[str], running: list[str], started_at: float) -> str:
    return process_record(name, lanes=lanes, tasks=running, at=time.time(), started_at=started_at)


def worker_alive(name: str, record: str | None = None) -> bool:
    record = record if record is not None else get_redis().get(keys.worker_alive(name))
    return bool(record) and not provably_dead(record)


def live_workers(lane: str) -> list[dict]:
    names = [k.rsplit(":", 1)[-1] for k in Worker.all_keys(queue=rq_queue(lane))]
    if not names:
        return []
    records = get_redis().mget([keys.worker_alive(n) for n in names])
    return [json.loads(r) for r in records if r and worker_alive("", r)]


def lost_tasks() -> list[tuple[store.Task, str]]:
    """(task, why) for every processing task that nobody works on any more."""
    lost = []
    for lane in TASK_LANES:
        for task_id, worker in queue.processing(lane).items():
            task = store.load(task_id)
            if task is None or task.status != TaskStatus.PROCESSING:
                queue.release(lane, task_id)
            elif why := why_lost(task, get_redis().get(keys.worker_alive(worker))):
                lost.append((task, why))
    return lost


def why_lost(task: store.Task, record: str | None) -> str | None:
    if not record or provably_dead(record):
        return "its worker died"
    info = json.loads(record)
    dropped = "tasks" in info and task.task_id not in info["tasks"]
    if dropped and info.get("at", 0) > (task.started_at or 0) + ORPHAN_MARGIN_SECONDS:
        return "its worker is alive but no longer runs it"
    return None
