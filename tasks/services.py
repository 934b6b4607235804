"""Task services: the only code that creates, reads and cancels tasks."""

import hashlib
import json
import time
import uuid

from django.conf import settings

from sop_llm import keys
from sop_llm.errors import Conflict, NotFound, ServiceError
from sop_llm.providers import lane_for
from sop_llm.providers.types import SamplingParams
from sop_llm.redis import get_redis, get_rq_redis
from sop_llm.telemetry.events import publish
from sop_llm.telemetry.stats import stats_incr
from tasks import lifecycle, lua, queue, store
from tasks.estimate import queue_estimate
from tasks.presenters import task_public, task_report_view
from tasks.recovery import live_workers, why_lost
from tasks.sealing import seal, split_options


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


def task_create(
    *, data: dict, idempotency_key: str | None, client_id: str, task_id: str | None = None
) -> tuple[dict, bool]:
    """Store and enqueue a validated task. -> (the task as the API shows it, created?).

    `task_id` lets a caller subscribe to the task's events before it exists."""
    data = {k: v for k, v in data.items() if k not in ("idempotency_key", "wait")}
    task_id = task_id or new_task_id()
    lane = lane_for(data["provider"])
    now = time.time()
    request, secrets = _split_secrets(data)
    fields = {
        "task_id": task_id,
        "status": "queued",
        "lane": lane,
        "provider": data["provider"],
        "model": data["model"],
        "model_key": data.get("model_key") or data["model"],
        "priority": data["priority"],
        "score": queue.score(data["priority"], now),
        "created_at": now,
        "queued_at": now,
        "client": client_id,
        "deadline_at": now + data["deadline_seconds"] if data.get("deadline_seconds") else None,
        "idempotency_key": idempotency_key,
        "webhook_url": data.get("webhook_url"),
        "metadata": data.get("metadata"),
        "request": request,
        "secrets": seal_if(secrets),
        "crash_count": 0,
        "max_tokens": (data.get("params") or {}).get("max_tokens", SamplingParams.max_tokens),
    }
    fingerprint = _fingerprint(data)
    entry = json.dumps({"at": now, "event": "created", "lane": lane, "priority": data["priority"]})
    outcome, value = lua.run(
        lua.CREATE,
        keys=[
            keys.session(task_id),
            keys.session_timeline(task_id),
            keys.queue_pending(lane),
            keys.idempotency(idempotency_key) if idempotency_key else "",
            keys.queue_deadlines(),
        ],
        args=[
            task_id,
            f"{task_id}|{fingerprint}",
            settings.IDEMPOTENCY_TTL_HOURS * 3600,
            store.session_ttl(),
            fields["score"],
            settings.QUEUE_MAX_PENDING,
            entry,
            fields["deadline_at"] or "",
            *store.flat_args(fields),
        ],
    )
    if outcome == "exists":
        return _replay(value, fingerprint, idempotency_key), False
    if outcome == "full":
        raise ServiceError(
            f"the {lane} queue is full ({value} pending, QUEUE_MAX_PENDING="
            f"{settings.QUEUE_MAX_PENDING}); retry later",
            code="queue_full",
            status=429,
            headers={"Retry-After": "5"},
        )
    _after_create(task_id, lane, data)
    # The answer is built from what was just written (no read-back round trip).
    view = task_public(store.Task.from_hash(store.encode(fields)))
    view["queue"] = {"position": int(value), "estimated_start_at": None, "recent_avg_ms": None}
    return view, True


def new_task_id() -> str:
    return uuid.uuid4().hex


def seal_if(secrets: dict) -> str:
    has_any = secrets["options"] or any(secrets["fallback"])
    return seal(secrets) if has_any else ""


def _after_create(task_id: str, lane: str, data: dict) -> None:
    """Stats, the event and the lane's rq job: one round trip."""
    pipe = get_rq_redis().pipeline(transaction=False)
    queue.wake(lane, pipe=pipe)  # first: rq may WATCH before it queues its commands
    stats_incr(pipe, {"created": 1, f"created:{data['provider']}": 1})
    publish(
        "task.queued",
        pipe=pipe,
        task_id=task_id,
        lane=lane,
        provider=data["provider"],
        model=data["model"],
        priority=data["priority"],
    )
    pipe.execute()


def _replay(stored: str, fingerprint: str, key: str) -> dict:
    task_id, _, stored_fingerprint = stored.partition("|")
    if stored_fingerprint != fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for a different request (task {task_id})",
            code="idempotency_conflict",
        )
    return task_get(task_id=task_id)


def _load(task_id: str) -> store.Task:
    task = store.load(task_id) if task_id and len(task_id) <= 64 else None
    if task is None:
        raise NotFound(f"no task {task_id!r} (unknown, or expired after its TTL)")
    return task


def task_get(*, task_id: str) -> dict:
    task = _load(task_id)
    view = task_public(task)
    if task.status == "queued":
        view["queue"] = queue_estimate(task.lane, task_id, len(live_workers(task.lane)))
    return view


def task_report(*, task_id: str) -> dict:
    task = _load(task_id)
    logs = get_redis().lrange(keys.logs_task(task_id), 0, -1)
    return task_report_view(task, store.timeline(task_id), [json.loads(x) for x in logs])


def task_cancel(*, task_id: str) -> dict:
    """Queued: removed and never runs. Running: the worker stops at the next token."""
    task = _load(task_id)
    if task.status == "queued" and lifecycle.task_cancel(
        task, code="cancelled", message="cancelled by the client"
    ):
        return task_get(task_id=task_id)
    if task.status == "processing":
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
