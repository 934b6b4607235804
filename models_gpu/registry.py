"""What each GPU worker holds, so that several of them can share one gpu lane without load
thrash: a task goes to the worker that has its model loaded (the CLAIM script in tasks.lua
reads these entries, and writes one itself when a GPU with nothing loaded claims a task).

Every GPU (GPU_ID) publishes `gpu:loaded:{GPU_ID}` -- the model it has loaded, or is loading --
refreshed by its ticker every couple of seconds and expiring soon after, so the entry of a
worker that died lapses by itself; `gpu:ids` lists the GPUs that published one.
"""

import json

from sop_llm.core import keys
from sop_llm.core.redis import get_redis

LOADED_TTL_SECONDS = 10  # the ticker refreshes every 2 s


# A claim's announcement ("loading") outlives a "nothing loaded" from the ticker that raced
# it: the claim wrote it in Redis a moment before the guard heard of it. It lapses by its TTL.
_CLEAR_UNLESS_CLAIMED = """
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
local ok, entry = pcall(cjson.decode, record)
if ok and entry.loading then return 0 end
return redis.call('DEL', KEYS[1])
"""


def loaded_publish(gpu_id: str, status: dict | None) -> None:
    if status is None:
        get_redis().eval(_CLEAR_UNLESS_CLAIMED, 1, keys.gpu_loaded(gpu_id))
        return
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(keys.gpu_loaded(gpu_id), json.dumps(status), ex=LOADED_TTL_SECONDS)
    pipe.sadd(keys.gpu_ids(), gpu_id)
    pipe.execute()
