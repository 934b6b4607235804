"""Task services: the only code that creates, reads and cancels tasks."""

import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from sop_llm.access.principals import Limits
from sop_llm.core import keys
from sop_llm.core.errors import Conflict, NotFound, ServiceError
from sop_llm.core.redis import get_redis, get_rq_redis
from sop_llm.core.telemetry.events import publish
from sop_llm.core.telemetry.stats import stats_incr
from sop_llm.providers import lane_for
from sop_llm.providers.types import SamplingParams
from tasks import fair, lifecycle, lua, queue, quota, store
from tasks.estimate import queue_estimate
from tasks.liveness import live_workers, why_lost
from tasks.presenters import task_public, task_report_view
from tasks.sealing import seal, split_options
from tasks.status import TaskStatus


def _fingerprint(data: dict) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _split_secrets(data: dict) -> tuple[dict, dict]:
    """The request as stored in clear, and the sealed-away secrets (per target)."""
    public, secret = split_options(data.get("options") or {})
    fallback, fallback_secrets = [], []
    for target in data.get("fallback") or []:
        target_public, target_secret = split_options(target.get("options") or {})
        fallback.append({**target, "options": target_public})
        fallback_secrets.append(target_secret)
    request = {
        name: data.get(name)
        for name in ("messages", "prompt", "params", "response_format", "timeout_seconds")
    }
    request.update({name: data[name] for name in store.REQUEST_EXTRAS if name in data})
    request.update(options=public, fallback=fallback)
    return request, {"options": secret, "fallback": fallback_secrets}


@dataclass
class NewTask:
    """A validated task to store: what `task_create` takes, for `tasks_create_many`."""

    data: dict
    idempotency_key: str | None
    owner: str  # the principal's id, whose limits it counts against
    task_id: str | None = None
    batch: dict | None = None  # the Batch API line it runs (tasks.batches): its window is
    # the task's deadline
    limits: Limits | None = None


@dataclass
class _Prepared:
    task_id: str
    lane: str
    data: dict
    fields: dict
    fingerprint: str
    keys: list[str]
    args: list


def task_create(
    *,
    data: dict,
    idempotency_key: str | None,
    owner: str,
    limits: Limits | None = None,
    task_id: str | None = None,
    batch: dict | None = None,
) -> tuple[dict, bool]:
    """Store and enqueue a validated task. -> (the task as the API shows it, created?).

    `owner`: the principal's id, who alone sees it and whose `limits` it
    counts against. `task_id` lets a caller subscribe to the task's events before it exists."""
    quota.check_priority(limits, data["priority"])
    new = _prepare(NewTask(data, idempotency_key, owner, task_id, batch, limits))
    outcome, value, *current = lua.run(lua.CREATE, keys=new.keys, args=new.args)
    if outcome == "exists":
        return _replay(value, new.fingerprint, idempotency_key, owner), False
    if outcome == "limit":
        raise quota.limit_refusal(value, current[0], limits, new.fields["reserved_tokens"])
    if outcome == "full":
        raise _queue_full(new.lane, value)
    _after_create([new])
    # The answer is built from what was just written (no read-back round trip).
    view = task_public(store.Task.from_hash(store.encode(new.fields)))
    view["queue"] = {"position": int(value), "estimated_start_at": None, "recent_avg_ms": None}
    return view, True


def tasks_create_many(*, items: list[NewTask]) -> list[str]:
    """`task_create` for many tasks in two round trips. -> each one's outcome: 'created',
    'exists' (its idempotency key was taken), 'full' (its lane is at QUEUE_MAX_PENDING) or
    'limit' (its owner is at one of its key's limits)."""
    prepared = [_prepare(item) for item in items]
    pipe = get_redis().pipeline(transaction=False)
    for new in prepared:
        lua.run(lua.CREATE, keys=new.keys, args=new.args, client=pipe)
    outcomes = [outcome for outcome, *_ in pipe.execute()]
    created = [new for new, outcome in zip(prepared, outcomes, strict=True) if outcome == "created"]
    if created:
        _after_create(created)
    return outcomes


def _queue_full(lane: str, depth) -> ServiceError:
    return ServiceError(
        f"the {lane} queue is full ({depth} pending, QUEUE_MAX_PENDING="
        f"{settings.QUEUE_MAX_PENDING}); retry later",
        code="queue_full",
        status=429,
        headers={"Retry-After": "5"},
    )


def _prepare(item: NewTask) -> _Prepared:
    """The session hash and the CREATE script's keys and arguments of one task."""
    data = {k: v for k, v in item.data.items() if k not in ("idempotency_key", "wait")}
    task_id = item.task_id or new_task_id()
    lane, now = lane_for(data["provider"]), time.time()
    fields = _fields(data, task_id=task_id, lane=lane, now=now, item=item)
    fingerprint = _fingerprint(data)
    entry = json.dumps({"at": now, "event": "created", "lane": lane, "priority": data["priority"]})
    idempotency_key = item.idempotency_key
    task_keys = lua.CREATE.keylist(
        session=keys.session(task_id),
        timeline=keys.session_timeline(task_id),
        pending=keys.queue_pending(lane),
        idempotency=keys.idempotency(item.owner, idempotency_key) if idempotency_key else "",
        deadlines=keys.queue_deadlines(),
        owner_open=keys.principal_open(item.owner),
        owner_tokens=keys.principal_tokens(item.owner, quota.day_of(now)),
        fair_clock=keys.queue_fair_clock(lane),
        fair_owners=keys.queue_fair_owners(lane),
    )
    max_queued, tokens_per_day = quota.limit_args(item.limits)
    args = lua.CREATE.argv(
        task_id=task_id,
        idem_value=f"{task_id}|{fingerprint}",
        idem_ttl=settings.IDEMPOTENCY_TTL_HOURS * 3600,
        session_ttl=store.session_ttl(),
        band=queue.band(data["priority"]),
        band_width=queue.BAND,
        max_pending=settings.QUEUE_MAX_PENDING,
        timeline_entry=entry,
        deadline_at=fields["deadline_at"] or "",
        max_queued=max_queued,
        tokens_per_day=tokens_per_day,
        reserve=fields["reserved_tokens"],
        tokens_ttl=quota.TOKENS_TTL_SECONDS,
        owner=item.owner,
        units=fields["fair_units"],
        owners_ttl=fair.OWNERS_TTL_SECONDS,
        effects=_created_effects(task_id, lane, data).encoded(),
        rest=store.flat_args(fields),
    )
    return _Prepared(task_id, lane, data, fields, fingerprint, task_keys, args)


def _created_effects(task_id: str, lane: str, data: dict) -> store.Effects:
    """The counters and the task.queued event of a creation, run by the CREATE script only
    when it creates (no round trip of their own). Under REDIS_WAIT_REPLICAS the counters
    stay the write the WAIT follows (see _after_create)."""
    effects = store.Effects()
    if not settings.REDIS_WAIT_REPLICAS:
        stats_incr(effects, {"created": 1, f"created:{data['provider']}": 1})
    publish(
        "task.queued",
        pipe=effects,
        task_id=task_id,
        lane=lane,
        provider=data["provider"],
        model=data["model"],
        priority=data["priority"],
    )
    return effects


def _fields(data: dict, *, task_id: str, lane: str, now: float, item: NewTask) -> dict:
    request, secrets = _split_secrets(data)
    fields = {
        "task_id": task_id,
        "status": TaskStatus.QUEUED,
        "lane": lane,
        "provider": data["provider"],
        "model": data["model"],
        "model_key": data.get("model_key") or data["model"],
        "priority": data["priority"],
        "created_at": now,
        "queued_at": now,
        "owner": item.owner,
        "deadline_at": now + data["deadline_seconds"] if data.get("deadline_seconds") else None,
        "idempotency_key": item.idempotency_key,
        "webhook_url": data.get("webhook_url"),
        "metadata": data.get("metadata"),
        "request": request,
        "secrets": seal_if(secrets),
        "crash_count": 0,
        "max_tokens": (data.get("params") or {}).get("max_tokens", SamplingParams.max_tokens),
    }
    fields["reserved_tokens"] = fields["max_tokens"]
    # Its charge in the fair-share order (the CREATE script writes its place, `score`).
    fields["share"] = fair.share_of(item.limits)
    estimate = fair.prompt_estimate(data) + (fields["max_tokens"] or 0)
    fields["fair_units"] = fair.units(estimate, fields["share"])
    if item.batch:
        fields["batch"] = item.batch
        fields["deadline_at"] = min(fields["deadline_at"] or math.inf, item.batch["expires_at"])
    return fields


def new_task_id() -> str:
    return uuid.uuid4().hex


def seal_if(secrets: dict) -> str:
    has_any = secrets["options"] or any(secrets["fallback"])
    return seal(secrets) if has_any else ""


def _after_create(created: list[_Prepared]) -> None:
    """The lanes' rq jobs: one round trip (two under REDIS_WAIT_REPLICAS). The counters and
    events rode in the CREATE script."""
    client = get_rq_redis()
    pipe = client.pipeline(transaction=False)
    lanes: dict[str, int] = {}
    for new in created:
        lanes[new.lane] = lanes.get(new.lane, 0) + 1
    for lane, count in lanes.items():
        queue.wake(lane, count, pipe=pipe)  # first: rq may WATCH before it queues its commands
    pipe.execute()
    if settings.REDIS_WAIT_REPLICAS:
        # rq turns its pipeline into MULTI, where WAIT would not block: the wait rides on a
        # pipeline of its own, whose writes (the counters) come after every write of these
        # tasks.
        tail = client.pipeline(transaction=False)
        counts: dict[str, int] = {"created": len(created)}
        for new in created:
            provider = f"created:{new.data['provider']}"
            counts[provider] = counts.get(provider, 0) + 1
        stats_incr(tail, counts)
        _replicas_wait(tail, created[-1].task_id)


def _replicas_wait(pipe, task_id: str) -> None:
    """WAIT counts the replicas that hold this connection's last write: the stats above, so
    every earlier write of the task too (a replica applies the stream in order)."""
    wanted = settings.REDIS_WAIT_REPLICAS
    pipe.execute_command("WAIT", wanted, settings.REDIS_WAIT_TIMEOUT_MS)
    acked = pipe.execute()[-1]
    if acked < wanted:
        raise not_replicated(task_id, acked)


def not_replicated(task_id: str, acked: int) -> ServiceError:
    """The promise of a 202 under REDIS_WAIT_REPLICAS is "on a replica too": without it, no
    202. The task is on the master and may well run, so the client is told how to find it."""
    return ServiceError(
        f"task {task_id} was stored but only {acked} of REDIS_WAIT_REPLICAS="
        f"{settings.REDIS_WAIT_REPLICAS} replicas confirmed it within "
        f"{settings.REDIS_WAIT_TIMEOUT_MS} ms: it may run; GET it, or retry with the same "
        "Idempotency-Key",
        code="not_replicated",
        status=503,
        headers={"Retry-After": "1"},
    )


def _replay(stored: str, fingerprint: str, key: str, owner: str) -> dict:
    task_id, _, stored_fingerprint = stored.partition("|")
    if stored_fingerprint != fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for a different request (task {task_id})",
            code="idempotency_conflict",
        )
    return task_get(task_id=task_id, owner=owner)


def _load(task_id: str, owner: str | None) -> store.Task:
    """The task, if it is `owner`'s (None: anyone's). Another owner's task is a 404
    like a missing one: whether it exists is not told."""
    task = store.load(task_id) if task_id and len(task_id) <= 64 else None
    if task is None or (owner is not None and task.owner != owner):
        raise NotFound(f"no task {task_id!r} (unknown, or expired after its TTL)")
    return task


def task_get(*, task_id: str, owner: str | None = None) -> dict:
    task = _load(task_id, owner)
    view = task_public(task)
    if task.status == TaskStatus.QUEUED:
        view["queue"] = queue_estimate(task.lane, task_id, len(live_workers(task.lane)))
    return view


def task_report(*, task_id: str, owner: str | None = None) -> dict:
    task = _load(task_id, owner)
    logs = get_redis().lrange(keys.logs_task(task_id), 0, -1)
    return task_report_view(task, store.timeline(task_id), [json.loads(x) for x in logs])


def task_cancel(*, task_id: str, owner: str | None = None) -> dict:
    """Queued: removed and never runs. Running: the worker stops at the next token."""
    task = _load(task_id, owner)
    if task.status == TaskStatus.QUEUED and lifecycle.task_cancel(
        task, code="cancelled", message="cancelled by the client"
    ):
        return task_get(task_id=task_id)
    if task.status == TaskStatus.PROCESSING:
        return _cancel_running(task)
    raise Conflict(f"task {task_id} is already {task.status}", code="task_finished")


def _cancel_running(task: store.Task) -> dict:
    """Mark it and tell its worker. When nobody runs it any more, a mark would stop nothing:
    the task is cancelled right here instead."""
    record = get_redis().get(keys.worker_alive(task.worker or ""))
    if why_lost(task, record) and lifecycle.task_cancel(
        task, code="cancelled", message="cancelled by the client (its worker had lost it)"
    ):
        return task_get(task_id=task.task_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.hset(keys.session(task.task_id), "cancel_requested", time.time())
    store.timeline_add(task.task_id, "cancel_requested", pipe=pipe)
    pipe.publish(keys.pubsub_cancel(), task.task_id)
    pipe.execute()
    return task_get(task_id=task.task_id)
