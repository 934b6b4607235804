"""Operator actions on lanes: purge pending tasks, deal with stuck ones."""

import time

from tasks import lifecycle, queue, store
from tasks.liveness import lost_tasks
from tasks.worker.recovery import tasks_recover


def queue_purge(*, lane: str) -> list[str]:
    """Cancel every pending task of a lane (each ends `cancelled`, webhooks fire)."""
    purged = []
    for task_id, _ in queue.pending(lane, limit=1_000_000):
        task = store.load(task_id)
        if task is None:
            queue.drop_pending(lane, task_id)
        elif lifecycle.task_cancel(
            task, code="purged", message="the lane was purged by an operator"
        ):
            purged.append(task_id)
    return purged


def stuck_tasks() -> list[dict]:
    """Tasks marked processing that nobody works on any more."""
    return [
        {
            "task_id": task.task_id,
            "lane": task.lane,
            "worker": task.worker,
            "why": why,
            "started_at": task.started_at,
            "running_for_s": round(time.time() - (task.started_at or time.time()), 1),
        }
        for task, why in lost_tasks()
    ]


def stuck_resolve(*, action: str) -> dict:
    """recover: the automatic rule (requeue within TASK_MAX_ATTEMPTS, else fail);
    requeue: put every stuck task back; fail: fail them all with worker_lost."""
    if action == "recover":
        return tasks_recover()
    report = {"requeued": [], "failed": []}
    for task, _ in lost_tasks():
        if action == "requeue" and lifecycle.task_requeue(task, reason="operator_requeue"):
            report["requeued"].append(task.task_id)
        elif action == "fail" and lifecycle.task_fail(
            task, code="worker_lost", message="failed by an operator: nobody runs it any more"
        ):
            report["failed"].append(task.task_id)
    return report
