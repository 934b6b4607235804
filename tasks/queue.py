"""Priority queue per lane: a Redis sorted set ordered by (priority desc, arrival asc).

rq supplies the worker lifecycle: every task enqueues one generic job on its lane, and the job
claims whatever task is best *now* (claim at execution time), so the order lives in Redis.
"""

import time

from django.conf import settings

from models_gpu.registry import LOADED_TTL_SECONDS
from sop_llm.core import keys
from sop_llm.core.lanes import rq_queue
from sop_llm.core.redis import get_redis
from tasks import lua

PRIORITY_MIN, PRIORITY_MAX = -100, 100
BAND = 10**13  # ms since the epoch stay below this until the year 2286
PREFERRED_MODEL_WINDOW = 32
MAX_PASSED_OVER = 8  # a task is passed over for the loaded model at most this often
# Several GPU workers: a task whose model another live worker holds waits for that worker this
# long (it is the next such task that worker claims), then any worker may load its model.
AFFINITY_WAIT_SECONDS = 60
JOB_TIMEOUT_MARGIN_SECONDS = 120
PROCESS_NEXT_JOB = "tasks.worker.jobs.process_next"  # by name: nothing imports the jobs module
# A GPU slot scheduler admits tasks this long, then drains (its rq job's timeout covers both).
SLOT_ADMIT_SECONDS = 6 * 3600


def score(priority: int, enqueued_at: float) -> int:
    """Strictly by priority, then FIFO; exact in a double for the whole priority range."""
    return (PRIORITY_MAX - priority) * BAND + int(enqueued_at * 1000)


def priority_of(score_value: float) -> int:
    return PRIORITY_MAX - int(score_value // BAND)


def slot_scheduled(lane: str) -> bool:
    """Does a slot scheduler (tasks.worker.slots) run this lane's tasks several at a time?"""
    return lane == "gpu" and settings.GPU_SLOTS > 1


def wake(lane: str, count: int = 1, pipe=None) -> None:
    """Enqueue `count` generic jobs on the lane: each will claim the best pending task.
    With `pipe` (an rq-connection pipeline) the jobs ride in the caller's round trip."""
    queue = rq_queue(lane)
    timeout = settings.TASK_MAX_TIMEOUT_SECONDS + JOB_TIMEOUT_MARGIN_SECONDS
    if slot_scheduled(lane):
        timeout += SLOT_ADMIT_SECONDS
    for _ in range(count):
        queue.enqueue_call(
            PROCESS_NEXT_JOB,
            args=(lane,),
            timeout=timeout,
            result_ttl=0,
            failure_ttl=86400,
            description=f"process next {lane} task",
            pipeline=pipe,
        )
    if lane == "gpu":  # the web may not know the worker's GPU_SLOTS: ring regardless
        (pipe if pipe is not None else queue.connection).publish(keys.pubsub_lane_queued(lane), "")


def claim(
    lane: str, worker: str, preferred_model: str = "", gpu_id: str = ""
) -> tuple[str | None, list[str], list[str]]:
    """Pop the best runnable task -> (task_id or None, ids past their deadline, the claimed
    task's hash as field/value pairs). On the gpu lane (`gpu_id` given), tasks for a model
    another live GPU holds are left to it for up to AFFINITY_WAIT_SECONDS, and a GPU with
    nothing loaded announces the model it claimed in the same step. Called by
    tasks.lifecycle only."""
    head, _, tail = keys.session("\x00").partition("\x00")
    loaded_head, _, loaded_tail = keys.gpu_loaded("\x00").partition("\x00")
    args = [
        worker,
        time.time(),
        head,
        tail,
        preferred_model,
        PREFERRED_MODEL_WINDOW,
        MAX_PASSED_OVER,
        BAND,
        gpu_id,
        AFFINITY_WAIT_SECONDS,
        loaded_head,
        loaded_tail,
        LOADED_TTL_SECONDS,
    ]
    task_id, expired, fields, left = lua.run(
        lua.CLAIM,
        keys=[keys.queue_pending(lane), keys.queue_processing(lane), keys.gpu_ids()],
        args=args,
    )
    if task_id is None and left and rq_queue(lane).count == 0:
        wake(lane)  # an idle worker that holds their model needs a job to come and take them
    return task_id or None, list(expired), list(fields)


def position(lane: str, task_id: str) -> int | None:
    rank = get_redis().zrank(keys.queue_pending(lane), task_id)
    return None if rank is None else rank + 1


def pending(lane: str, limit: int = 100) -> list[tuple[str, float]]:
    return get_redis().zrange(keys.queue_pending(lane), 0, limit - 1, withscores=True)


def head_priority(lane: str) -> int | None:
    """The priority of the lane's best pending task (None: nothing pending)."""
    head = get_redis().zrange(keys.queue_pending(lane), 0, 0, withscores=True)
    return priority_of(head[0][1]) if head else None


def depth(lane: str) -> int:
    return get_redis().zcard(keys.queue_pending(lane))


def processing(lane: str) -> dict[str, str]:
    return get_redis().hgetall(keys.queue_processing(lane))


def release(lane: str, task_id: str, pipe=None) -> None:
    (pipe if pipe is not None else get_redis()).hdel(keys.queue_processing(lane), task_id)


def drop_pending(lane: str, task_id: str) -> None:
    """Forget an id whose session is gone (expired with its TTL)."""
    get_redis().zrem(keys.queue_pending(lane), task_id)
