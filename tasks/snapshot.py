"""The queues as operators see them: pending tasks in run order, and what runs now."""

from sop_llm.core import keys
from sop_llm.core.lanes import TASK_LANES
from sop_llm.core.redis import get_redis
from tasks import queue
from tasks.presenters import iso


def processing_snapshot() -> list[dict]:
    running = []
    for lane in TASK_LANES:
        for task_id, worker in queue.processing(lane).items():
            task = get_redis().hmget(keys.session(task_id), "provider", "model", "started_at")
            running.append(
                {
                    "task_id": task_id,
                    "lane": lane,
                    "worker": worker,
                    "provider": task[0],
                    "model": task[1],
                    "started_at": iso(task[2]),
                }
            )
    return running


def queue_snapshot(*, limit: int = 100) -> dict:
    lanes = {}
    for lane in TASK_LANES:
        entries = queue.pending(lane, limit)
        pipe = get_redis().pipeline(transaction=False)
        for task_id, _ in entries:
            pipe.hmget(keys.session(task_id), "provider", "model", "queued_at")
        details = pipe.execute()
        lanes[lane] = {
            "depth": queue.depth(lane),
            "pending": [
                {
                    "position": n + 1,
                    "task_id": task_id,
                    "priority": queue.priority_of(score),
                    "provider": d[0],
                    "model": d[1],
                    "enqueued_at": iso(d[2]),
                }
                for n, ((task_id, score), d) in enumerate(zip(entries, details, strict=True))
            ],
            "processing": [{"task_id": t, "worker": w} for t, w in queue.processing(lane).items()],
        }
    return {"lanes": lanes}
