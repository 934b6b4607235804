"""Priority queue per lane: a Redis sorted set ordered by (priority desc, arrival asc).

rq supplies the worker lifecycle: every task enqueues one generic job on its lane, and the job
claims whatever task is best *now* (claim at execution time), so the order lives in Redis.
"""

import time

from django.conf import settings
from rq import Queue

from sop_llm import keys
from sop_llm.redis import get_redis, get_rq_redis
from tasks import lua
from tasks.store import _script

LANES = ("gpu", "remote")
PRIORITY_MIN, PRIORITY_MAX = -100, 100
BAND = 10**13  # ms since the epoch stay below this until the year 2286
PREFERRED_MODEL_WINDOW = 32
MAX_PASSED_OVER = 8  # a task is passed over for the loaded model at most this often
JOB_TIMEOUT_MARGIN_SECONDS = 120


def score(priority: int, enqueued_at: float) -> int:
    """Strictly by priority, then FIFO; exact in a double for the whole priority range."""
    return (PRIORITY_MAX - priority) * BAND + int(enqueued_at * 1000)


def priority_of(score_value: float) -> int:
    return PRIORITY_MAX - int(score_value // BAND)


def rq_queue(lane: str) -> Queue:
    return Queue(keys.rq_queue_name(lane), connection=get_rq_redis())


def wake(lane: str, count: int = 1, pipe=None) -> None:
    """Enqueue `count` generic jobs on the lane: each will claim the best pending task.
    With `pipe` (an rq-connection pipeline) the jobs ride in the caller's round trip."""
    from tasks.jobs import process_next

    queue = rq_queue(lane)
    timeout = settings.TASK_MAX_TIMEOUT_SECONDS + JOB_TIMEOUT_MARGIN_SECONDS
    for _ in range(count):
        queue.enqueue_call(
            process_next,
            args=(lane,),
            timeout=timeout,
            result_ttl=0,
            failure_ttl=86400,
            description=f"process next {lane} task",
            pipeline=pipe,
        )


def claim(lane: str, worker: str, preferred_model: str = "") -> tuple[str | None, list[str]]:
    """Pop the best runnable task -> (task_id or None, ids that expired past their deadline)."""
    head, _, tail = keys.session("\x00").partition("\x00")
    args = [
        worker,
        time.time(),
        head,
        tail,
        preferred_model,
        PREFERRED_MODEL_WINDOW,
        MAX_PASSED_OVER,
        BAND,
    ]
    task_id, expired = _script(lua.CLAIM)(
        keys=[keys.queue_pending(lane), keys.queue_processing(lane)], args=args
    )
    return task_id or None, list(expired)


def position(lane: str, task_id: str) -> int | None:
    rank = get_redis().zrank(keys.queue_pending(lane), task_id)
    return None if rank is None else rank + 1


def pending(lane: str, limit: int = 100) -> list[tuple[str, float]]:
    return get_redis().zrange(keys.queue_pending(lane), 0, limit - 1, withscores=True)


def depth(lane: str) -> int:
    return get_redis().zcard(keys.queue_pending(lane))


def processing(lane: str) -> dict[str, str]:
    return get_redis().hgetall(keys.queue_processing(lane))


def release(lane: str, task_id: str, pipe=None) -> None:
    (pipe if pipe is not None else get_redis()).hdel(keys.queue_processing(lane), task_id)
