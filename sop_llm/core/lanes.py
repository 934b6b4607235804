"""Worker lanes: the rq queues that separate the GPU from remote APIs and webhook deliveries."""

from rq import Queue

from sop_llm.core import keys
from sop_llm.core.redis import get_rq_redis

TASK_LANES = ("gpu", "remote")  # lanes that run tasks from a priority queue
LANES = (*TASK_LANES, "webhooks")  # every lane a worker may serve


def rq_queue(lane: str) -> Queue:
    return Queue(keys.rq_queue_name(lane), connection=get_rq_redis())
