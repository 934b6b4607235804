"""Every status change of a task after its creation, with its timestamps and side effects.

    (the statuses, and which change leads to which: tasks/status.py)

Each change is one TRANSITION script: the guarded status change, its `{status}_at` (and for
final ones `finished_at`) stamp, and the effects that follow from it (timeline, counters,
events, queue bookkeeping, and the finish hooks' writes: tasks/hooks.py) happen in one atomic
step, or not at all. A final change then hands the webhook, if any, to its queue, and runs the
finish hooks' `after`.
"""

import logging
import time
from typing import Any

import redis

from sop_llm.core import keys
from sop_llm.core.backoff import retry_delay
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import publish
from sop_llm.core.telemetry.stats import stats_incr
from tasks import lua, queue
from tasks.charges import token_counts
from tasks.checkpoints import checkpoint_drop, checkpoint_effects, checkpoint_load
from tasks.fair import fair_effects
from tasks.hooks import finish_hooks
from tasks.status import ALLOWED_FROM, TaskStatus
from tasks.store import Effects, Task, flat_args, load, pairs_to_dict, timeline_add
from tasks.usage import usage_effects
from tasks.webhooks import webhook_schedule

log = logging.getLogger(__name__)
# A worker holds a finished result this long while Redis is unreachable before giving up.
HOLD_RESULT_SECONDS = 900.0


def task_claim(
    *, lane: str, worker: str, preferred_model: str = "", gpu_id: str = ""
) -> Task | None:
    """queued -> processing for the best runnable task of the lane; fails the expired ones."""
    task_id, expired, fields = queue.claim(lane, worker, preferred_model, gpu_id)
    for expired_id in expired:
        task_expire(task_id=expired_id)
    if task_id is None:
        return None
    return _announced([Task.from_hash(pairs_to_dict(fields))], lane, worker)[0]


def task_claim_many(
    *, lane: str, worker: str, limit: int, preferred_model: str = "", gpu_id: str = ""
) -> list[Task]:
    """As task_claim, up to `limit` tasks in one round trip (queue.claim_many says which)."""
    claimed, expired = queue.claim_many(lane, worker, limit, preferred_model, gpu_id)
    for expired_id in expired:
        task_expire(task_id=expired_id)
    tasks = [Task.from_hash(pairs_to_dict(fields)) for fields in claimed]
    return _announced(tasks, lane, worker) if tasks else []


def _announced(tasks: list[Task], lane: str, worker: str) -> list[Task]:
    """Timeline and task.started for the claimed tasks, in one round trip."""
    pipe = get_redis().pipeline(transaction=False)
    for task in tasks:
        wait_ms = _wait_ms(task)
        timeline_add(task.task_id, "dequeued", pipe=pipe, worker=worker, queue_wait_ms=wait_ms)
        publish("task.started", pipe=pipe, task_id=task.task_id, lane=lane, worker=worker)
    try:
        pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # The claim itself went through: raising now would strand the task in `processing`
        # until recovery noticed. The run goes on; its result is held through the outage.
        ids = ", ".join(task.task_id for task in tasks)
        log.warning("task %s claimed but not announced (%s)", ids, exc)
    return tasks


def task_complete(task: Task, *, fields: dict[str, Any], effects: Effects) -> bool:
    """processing -> completed. Held through a Redis outage: a result is never dropped."""
    return _hold(task, TaskStatus.COMPLETED, fields, effects=effects)


def task_fail(task: Task, *, code: str, message: str, **fields: Any) -> bool:
    """processing -> failed, with the error that says why."""
    error = {"code": code, "message": message}
    return _hold(
        task, TaskStatus.FAILED, {"error": error, **fields}, allowed=(TaskStatus.PROCESSING,)
    )


def task_cancel(task: Task, *, code: str, message: str, running: bool = False, **fields) -> bool:
    """queued or processing -> cancelled (a queued task leaves its lane and never runs).
    `running`: the worker stopping its own generation, which must not touch a task that
    went back to the queue meanwhile."""
    allowed = (TaskStatus.PROCESSING,) if running else ALLOWED_FROM[TaskStatus.CANCELLED]
    error = {"code": code, "message": message}
    return _hold(task, TaskStatus.CANCELLED, {"error": error, **fields}, allowed=allowed)


def task_expire(*, task_id: str) -> bool:
    """queued -> failed: still waiting at its deadline, so it will never run."""
    task = load(task_id)
    if task is None or task.final:
        get_redis().zrem(keys.queue_deadlines(), task_id)
    if task is None or task.status != TaskStatus.QUEUED:
        return False  # a running task keeps its entry: if it is requeued, it still expires
    error = {"code": "deadline_exceeded", "message": "the task was still queued at its deadline"}
    return _hold(task, TaskStatus.FAILED, {"error": error}, allowed=(TaskStatus.QUEUED,))


def task_requeue(task: Task, *, reason: str, lost: dict | None = None) -> bool:
    """processing -> queued at its old place, when its worker died or is stopping. `lost`:
    the attempt the dead worker ran, kept (and charged when the task finishes). With a
    checkpoint the next run resumes from it, and the event says so ({tokens, offset}): a
    stream reader keeps the text it has."""
    effects = Effects().hdel(keys.queue_processing(task.lane), task.task_id)
    effects.zadd(keys.queue_pending(task.lane), {task.task_id: task.score})
    kept = checkpoint_load(task_id=task.task_id) if task.lane == "gpu" else None
    resuming = {"resumes": kept.summary()} if kept and kept.attempt == 1 and kept.tokens else {}
    timeline_add(task.task_id, "requeued", pipe=effects, reason=reason, **resuming)
    publish(
        "task.queued", pipe=effects, task_id=task.task_id, lane=task.lane, reason=reason, **resuming
    )
    fields = {"worker": "", "started_at": "", "crash_count": task.crash_count + 1}
    if lost is not None:
        fields |= {"lost_attempts": [*(task.lost_attempts or []), lost], "progress": None}
    done = transition(task, TaskStatus.QUEUED, fields, effects)
    if done:
        queue.wake(task.lane)
    return done


def task_preempt(task: Task, *, by: str, lost: list[dict], checkpoint: dict) -> bool:
    """processing -> queued at its old place (its original score: before every later task of
    its priority), its slot taken by the more urgent task `by`. The checkpoint is written in
    the same atomic step, so the next run resumes from it; a preemption is not a crash."""
    effects = Effects().hdel(keys.queue_processing(task.lane), task.task_id)
    effects.zadd(keys.queue_pending(task.lane), {task.task_id: task.score})
    checkpoint_effects(effects, task, checkpoint)
    resumes = {"tokens": len(checkpoint["tokens"]), "offset": checkpoint["emitted"]}
    timeline_add(task.task_id, "preempted", pipe=effects, by=by, **resumes)
    publish("task.preempted", pipe=effects, task_id=task.task_id, by=by, **resumes)
    resuming = {"resumes": resumes} if checkpoint["tokens"] else {}  # else it starts over
    publish(
        "task.queued",
        pipe=effects,
        task_id=task.task_id,
        lane=task.lane,
        reason="preempted",
        **resuming,
    )
    stats_incr(effects, {"preempted": 1})
    fields = {
        "worker": "",
        "started_at": "",
        "preemptions": task.preemptions + 1,
        "lost_attempts": [*(task.lost_attempts or []), *lost],
        "progress": None,
    }
    done = transition(task, TaskStatus.QUEUED, fields, effects)
    if done:
        queue.wake(task.lane)
    return done


def deadlines_sweep() -> list[str]:
    """Fail every queued task whose deadline has passed, on time, whoever is busy."""
    due = get_redis().zrangebyscore(keys.queue_deadlines(), "-inf", time.time(), start=0, num=500)
    return [task_id for task_id in due if task_expire(task_id=task_id)]


def transition(
    task: Task, status: TaskStatus, fields: dict, effects: Effects, allowed=None
) -> bool:
    """The one call that changes a stored status (besides CLAIM). -> whether it changed.
    Refused when the task is no longer in an allowed status, or was claimed again since
    `task` was read."""
    stamp = {f"{status}_at": time.time()}
    allowed = ",".join(allowed or ALLOWED_FROM[status])
    args = [status, allowed, effects.encoded(), task.run, *flat_args(stamp | fields)]
    done, current = lua.run(lua.TRANSITION, keys=[keys.session(task.task_id)], args=args)
    if not done and current:
        log.info("task %s: %s refused, it is %s", task.task_id, status, current)
    task.status = status if done else (current or task.status)
    return bool(done)


def _finish(task: Task, status: TaskStatus, fields: dict, *, effects=None, allowed=None):
    effects = Effects(list(effects.ops) if effects else [])
    effects.hdel(keys.queue_processing(task.lane), task.task_id)
    effects.zrem(keys.queue_pending(task.lane), task.task_id)
    effects.zrem(keys.queue_deadlines(), task.task_id)
    checkpoint_drop(effects, task.task_id)
    code = (fields.get("error") or {}).get("code")
    timeline_add(task.task_id, status, pipe=effects, **({"code": code} if code else {}))
    stats_incr(effects, {status: 1, f"{status}:{task.provider}": 1, **token_counts(fields)})
    publish(f"task.{status}", pipe=effects, task_id=task.task_id, status=status)
    usage_effects(effects, task, fields)
    fair_effects(effects, task, fields)
    for hook in finish_hooks(task):  # e.g. a Batch API line: its output rides in this step
        hook.effects(task, status, fields, effects)
    return transition(task, status, {"finished_at": time.time(), **fields}, effects, allowed)


def _hold(task: Task, status: TaskStatus, fields: dict, **effects) -> bool:
    """A final change, retried while Redis is unreachable (up to HOLD_RESULT_SECONDS), then
    the webhook hand-off, retried the same way. A retry that finds the status already set by
    this run means the lost reply's write went through."""
    tries = []

    def write() -> bool:
        tries.append(1)
        return _finish(task, status, fields, **effects)

    done = _retrying(write) or (len(tries) > 1 and task.status == status)
    if done and task.webhook_url:
        _retrying(lambda: webhook_schedule(task_id=task.task_id))
    for hook in finish_hooks(task) if done else ():
        _retrying(lambda hook=hook: hook.after(task))
    return done


def _retrying(write):
    deadline, attempt = time.monotonic() + HOLD_RESULT_SECONDS, 0
    while True:
        try:
            return write()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise
            delay = retry_delay(base=0.2, retry_index=attempt, retry_after=None, cap=5.0)
            log.warning("Redis unreachable (%s); holding the result, retry in %.1fs", exc, delay)
            time.sleep(delay)
            attempt += 1


def _wait_ms(task: Task) -> float:
    return round(((task.started_at or 0) - (task.queued_at or 0)) * 1000, 1)
