"""Priority queue per lane: a Redis sorted set ordered by priority, then fair share.

A score is band * BAND + place: the band is the priority (higher first), the place the task's
fair-share place within it (tasks/lua/create.lua: FIFO within one owner, owners interleaved
by the tokens they were served over their share). The set is the run order, as it stands.

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
BAND = 10**13  # places: tokens served in one band (ms since the epoch before fair share)
PREFERRED_MODEL_WINDOW = 32
MAX_PASSED_OVER = 8  # a task is passed over for the loaded model at most this often
# Several GPU workers: a task whose model another live worker holds waits for that worker this
# long (it is the next such task that worker claims), then any worker may load its model.
AFFINITY_WAIT_SECONDS = 60
JOB_TIMEOUT_MARGIN_SECONDS = 120
PROCESS_NEXT_JOB = "tasks.worker.jobs.process_next"  # by name: nothing imports the jobs module
# A GPU slot scheduler admits tasks this long, then drains (its rq job's timeout covers both).
SLOT_ADMIT_SECONDS = 6 * 3600


def band(priority: int) -> int:
    """A priority's band of scores (lower runs first); band * BAND + place stays exact in a
    double for the whole priority range."""
    return PRIORITY_MAX - priority


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
    task's hash as field/value pairs), moving its band's fair-share clock. On the gpu lane
    (`gpu_id` given), tasks for a model another live GPU holds are left to it for up to
    AFFINITY_WAIT_SECONDS, and a GPU with nothing loaded announces the model it claimed in
    the same step. Called by tasks.lifecycle only."""
    task_id, expired, fields, left = lua.run(
        lua.CLAIM, keys=_claim_keys(lane), args=_claim_args(worker, preferred_model, gpu_id)
    )
    if task_id is None and left and rq_queue(lane).count == 0:
        wake(lane)  # an idle worker that holds their model needs a job to come and take them
    return task_id or None, list(expired), list(fields)


# Several claims in one round trip, for a slot scheduler whose slots free up together (a
# batch of answers ends on one step, and their callers' next requests arrive at once): CLAIM
# itself (its text untouched) run as a function, again while it finds tasks of the first
# one's model, which a running batch can take without a reload. A task of another model ends
# the run (its caller holds it until the batch drains). Two ARGV ride after CLAIM's own: the
# count, then the position of CLAIM's preferred-model argument, which later claims set.
CLAIM_MANY = (
    "local function claim_one()\n"
    + lua.CLAIM.source
    + """
end
local preferred_at = tonumber(table.remove(ARGV))
local n = tonumber(table.remove(ARGV))
local claimed, expired, seen, left = {}, {}, {}, 0
for _ = 1, n do
  local one = claim_one()
  for _, id in ipairs(one[2]) do
    if not seen[id] then seen[id] = true; table.insert(expired, id) end
  end
  left = math.max(left, one[4] or 0)
  if not one[1] then break end
  table.insert(claimed, one[3])
  local model = ''
  for i = 1, #one[3], 2 do
    if one[3][i] == 'model_key' then model = one[3][i + 1] end
  end
  if ARGV[preferred_at] == '' then
    ARGV[preferred_at] = model
  elseif model ~= ARGV[preferred_at] then
    break
  end
end
return {claimed, expired, left}
"""
)
PREFERRED_ARG = lua.CLAIM.args.index("preferred") + 1  # Lua counts from 1


def claim_many(
    lane: str, worker: str, limit: int, preferred_model: str = "", gpu_id: str = ""
) -> tuple[list[list[str]], list[str]]:
    """As `claim`, up to `limit` tasks in one step -> (each claimed task's hash as field/value
    pairs, in claim order; ids past their deadline). Called by tasks.lifecycle only."""
    args = [*_claim_args(worker, preferred_model, gpu_id), limit, PREFERRED_ARG]
    claimed, expired, left = lua.run(CLAIM_MANY, keys=_claim_keys(lane), args=args)
    if not claimed and left and rq_queue(lane).count == 0:
        wake(lane)
    return [list(fields) for fields in claimed], list(expired)


def _claim_keys(lane: str) -> list[str]:
    return lua.CLAIM.keylist(
        pending=keys.queue_pending(lane),
        processing=keys.queue_processing(lane),
        gpu_ids=keys.gpu_ids(),
        fair_clock=keys.queue_fair_clock(lane),
    )


def _claim_args(worker: str, preferred_model: str, gpu_id: str) -> list:
    head, _, tail = keys.session("\x00").partition("\x00")
    loaded_head, _, loaded_tail = keys.gpu_loaded("\x00").partition("\x00")
    return lua.CLAIM.argv(
        worker=worker,
        now=time.time(),
        session_head=head,
        session_tail=tail,
        preferred=preferred_model,
        window=PREFERRED_MODEL_WINDOW,
        max_passed_over=MAX_PASSED_OVER,
        band_width=BAND,
        gpu=gpu_id,
        affinity_wait=AFFINITY_WAIT_SECONDS,
        loaded_head=loaded_head,
        loaded_tail=loaded_tail,
        loaded_ttl=LOADED_TTL_SECONDS,
    )


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
