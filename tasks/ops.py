"""Operator actions on lanes: purge pending tasks, deal with stuck ones."""

import time

from sop_llm import keys
from sop_llm.redis import get_redis
from tasks import queue, store
from tasks.recovery import tasks_recover, worker_alive


def queue_purge(*, lane: str) -> list[str]:
    """Cancel every pending task of a lane (each ends `cancelled`, webhooks fire)."""
    from tasks.services import finish_side_effects

    purged = []
    for task_id, _ in queue.pending(lane, limit=1_000_000):
        error = {"code": "purged", "message": "the lane was purged by an operator"}
        done, _ = store.transition(task_id, "cancelled", error=error)
        get_redis().zrem(keys.queue_pending(lane), task_id)
        if done:
            finish_side_effects(task_id, "cancelled", provider=store.load(task_id)["provider"])
            purged.append(task_id)
    return purged


def stuck_tasks() -> list[dict]:
    """Tasks marked processing whose worker is gone."""
    stuck = []
    for lane in queue.LANES:
        for task_id, worker in queue.processing(lane).items():
            if not worker_alive(worker):
                started = store.load(task_id) or {}
                stuck.append(
                    {
                        "task_id": task_id,
                        "lane": lane,
                        "worker": worker,
                        "started_at": started.get("started_at"),
                        "running_for_s": round(
                            time.time() - float(started.get("started_at") or time.time()), 1
                        ),
                    }
                )
    return stuck


def stuck_resolve(*, action: str) -> dict:
    """recover: the automatic rule (requeue within TASK_MAX_ATTEMPTS, else fail);
    requeue: put every stuck task back; fail: fail them all with worker_lost."""
    from tasks.processor import _fail, task_requeue

    if action == "recover":
        return tasks_recover()
    report = {"requeued": [], "failed": []}
    for item in stuck_tasks():
        if action == "requeue" and task_requeue(
            task_id=item["task_id"], lane=item["lane"], reason="operator_requeue"
        ):
            report["requeued"].append(item["task_id"])
        elif action == "fail":
            _fail(
                item["task_id"],
                item["lane"],
                "worker_lost",
                "failed by an operator: its worker is gone",
            )
            report["failed"].append(item["task_id"])
    return report
