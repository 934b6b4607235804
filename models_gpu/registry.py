"""What each GPU worker holds, so that several of them can share one gpu lane without load
thrash: a task goes to the worker that has its model loaded (see tasks.queue.claim).

Every GPU (GPU_ID) publishes `gpu:loaded:{GPU_ID}` -- the model it has loaded, or is loading --
refreshed by its ticker every couple of seconds and expiring soon after, so the entry of a
worker that died lapses by itself; `gpu:ids` lists the GPUs that published one.
"""

import json

from sop_llm import keys
from sop_llm.redis import get_redis

LOADED_TTL_SECONDS = 10  # the ticker refreshes every 2 s


def loaded_publish(gpu_id: str, status: dict | None) -> None:
    pipe = get_redis().pipeline(transaction=False)
    if status is None:
        pipe.delete(keys.gpu_loaded(gpu_id))
    else:
        pipe.set(keys.gpu_loaded(gpu_id), json.dumps(status), ex=LOADED_TTL_SECONDS)
        pipe.sadd(keys.gpu_ids(), gpu_id)
    pipe.execute()


def models_elsewhere(gpu_id: str) -> tuple[str, ...]:
    """Models that GPUs other than `gpu_id` hold or are loading now."""
    others = [other for other in get_redis().smembers(keys.gpu_ids()) if other != gpu_id]
    if not others:
        return ()
    records = get_redis().mget([keys.gpu_loaded(other) for other in others])
    lapsed = [other for other, record in zip(others, records, strict=True) if record is None]
    if lapsed:
        get_redis().srem(keys.gpu_ids(), *lapsed)
    return tuple(sorted({json.loads(record)["name"] for record in records if record}))
