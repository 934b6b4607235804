"""Webhook delivery: signed (Standard Webhooks), retried with backoff, recorded on the task.

Runs on the `webhooks` rq queue only, so a slow receiver never holds up a generation.
"""

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable

import requests
from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.backoff import parse_retry_after, retry_delay
from sop_llm.core.errors import Conflict, NotFound
from sop_llm.core.lanes import rq_queue
from sop_llm.core.netguard import UnsafeURL, check_url
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.stats import stats_incr
from tasks import store
from tasks.presenters import task_public
from tasks.result import TaskResult
from tasks.status import TaskStatus

log = logging.getLogger(__name__)
BACKOFF_CAP_SECONDS = 60.0
DELIVER_JOB = "tasks.worker.jobs.deliver_webhook"  # by name: nothing imports the jobs module


def webhook_schedule(*, task_id: str) -> bool:
    """Hand a finished task's webhook to the webhooks queue (if it named one)."""
    task = store.load(task_id)
    if not task or not task.webhook_url:
        return False
    store.update(task_id, webhook={**(task.webhook or {}), "state": "pending"})
    rq_queue("webhooks").enqueue(
        DELIVER_JOB, task_id, job_timeout=delivery_job_timeout(), result_ttl=0, failure_ttl=86400
    )
    return True


def delivery_job_timeout() -> int:
    attempts = settings.WEBHOOK_MAX_RETRIES + 1
    return int(attempts * (settings.WEBHOOK_TIMEOUT_SECONDS + BACKOFF_CAP_SECONDS)) + 60


def event_of(task: store.Task) -> str:
    """A Responses API response's deliveries are named as OpenAI names them."""
    if not get_redis().exists(keys.response(task.task_id)):
        return f"task.{task.status}"
    result = TaskResult.from_record(task.result)
    cut = task.status == TaskStatus.COMPLETED and result is not None and result.truncated
    return "response.incomplete" if cut else f"response.{task.status}"


def payload_for(task: store.Task, delivery_id: str) -> dict:
    event = event_of(task)
    payload = {"event": event, "delivery_id": delivery_id, "task": task_public(task)}
    if event.startswith("response."):
        payload["data"] = {"id": f"resp_{task.task_id}"}  # OpenAI's webhook body names it so
    return payload


def signed_headers(delivery_id: str, body: str, *, task_id: str, event: str, attempt: int):
    from standardwebhooks import Webhook

    timestamp = dt.datetime.now(dt.UTC)
    signature = Webhook(settings.WEBHOOK_SECRET).sign(delivery_id, timestamp, body)
    return {
        "Content-Type": "application/json",
        "User-Agent": "sop-llm-webhooks",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "X-SOP-Event": event,
        "X-SOP-Task-Id": task_id,
        "X-SOP-Attempt": str(attempt),
    }


def webhook_deliver(*, task_id: str, sleep=time.sleep) -> str:
    """Deliver with retries; record every attempt; -> final state (delivered/failed)."""
    task = store.load(task_id)
    if task is None:
        return "expired"
    delivery_id = f"msg_{uuid.uuid4().hex}"
    payload = payload_for(task, delivery_id)
    body, event = json.dumps(payload, separators=(",", ":")), payload["event"]
    record = {**(task.webhook or {}), "state": "delivering", "delivery_id": delivery_id}
    record.setdefault("attempts", [])

    def recorded(outcome: dict) -> None:
        record["attempts"].append(outcome)
        store.update(task_id, webhook=record)
        store.timeline_add(task_id, "webhook_attempt", **outcome)

    deliver_with_retries(
        task.webhook_url,
        body,
        lambda attempt: signed_headers(
            delivery_id, body, task_id=task_id, event=event, attempt=attempt
        ),
        on_attempt=recorded,
        sleep=sleep,
    )
    record["state"] = "delivered" if record["attempts"][-1]["ok"] else "failed"
    store.update(task_id, webhook=record)
    pipe = get_redis().pipeline(transaction=False)
    stats_incr(pipe, {f"webhook_{record['state']}": 1})
    pipe.execute()
    if record["state"] == "failed":
        _dead_letter(task_id, delivery_id, record["attempts"][-1])
    return record["state"]


def deliver_with_retries(
    url: str,
    body: str,
    headers_for: Callable[[int], dict[str, str]],
    *,
    on_attempt: Callable[[dict], None],
    sleep=time.sleep,
) -> list[dict]:
    """The one delivery loop (task and batch webhooks): post, tell `on_attempt`, back off, until
    delivered, refused for good, or out of retries. -> every attempt's outcome."""
    attempts = []
    for attempt in range(1, settings.WEBHOOK_MAX_RETRIES + 2):
        outcome, retry_after = _attempt(url, body, headers_for(attempt), attempt)
        attempts.append(outcome)
        on_attempt(outcome)
        if outcome["ok"] or not outcome["retryable"] or attempt > settings.WEBHOOK_MAX_RETRIES:
            break
        sleep(_backoff(attempt, retry_after))
    return attempts


def _backoff(attempt: int, retry_after: float | None) -> float:
    return retry_delay(
        base=settings.WEBHOOK_BACKOFF_SECONDS,
        retry_index=attempt - 1,
        retry_after=retry_after,
        cap=BACKOFF_CAP_SECONDS,
    )


def _attempt(url: str, body: str, headers: dict[str, str], attempt: int):
    started, clock = time.time(), time.perf_counter()
    outcome = {
        "attempt": attempt,
        "at": started,
        "status_code": None,
        "error": None,
        "ok": False,
        "retryable": True,
    }
    retry_after = None
    try:
        check_url(url, what="webhook_url")  # again now: DNS may have changed since submit
        response = requests.post(
            url,
            data=body.encode(),
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            headers=headers,
        )
        outcome["status_code"] = response.status_code
        outcome["ok"] = 200 <= response.status_code < 300
        outcome["retryable"] = response.status_code == 429 or response.status_code >= 500
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if 300 <= response.status_code < 400:
            outcome.update(retryable=False, error="redirects are not followed")
    except UnsafeURL as exc:
        outcome.update(error=str(exc), retryable=False)
    except requests.Timeout:
        outcome["error"] = f"timed out after {settings.WEBHOOK_TIMEOUT_SECONDS}s"
    except requests.RequestException as exc:
        outcome["error"] = f"connection failed: {type(exc).__name__}"
    outcome["duration_ms"] = round((time.perf_counter() - clock) * 1000, 1)
    return outcome, retry_after


def _dead_letter(task_id: str, delivery_id: str, last: dict) -> None:
    entry = json.dumps(
        {"task_id": task_id, "delivery_id": delivery_id, "at": time.time(), "last": last}
    )
    pipe = get_redis().pipeline(transaction=False)
    pipe.lpush(keys.webhooks_dead(), entry)
    pipe.ltrim(keys.webhooks_dead(), 0, 9999)
    pipe.execute()


def webhook_redeliver(*, task_id: str, owner: str | None = None) -> dict:
    """Send the final payload again, on demand (a new delivery id, attempts appended), if the
    task is `owner`'s (None: anyone's)."""
    task = store.load(task_id)
    if task is None or (owner is not None and task.owner != owner):
        raise NotFound(f"no task {task_id!r}")
    if not task.webhook_url:
        raise Conflict(f"task {task_id} has no webhook_url", code="no_webhook")
    if task.status not in store.FINAL:
        raise Conflict(f"task {task_id} is still {task.status}", code="task_not_finished")
    webhook_schedule(task_id=task_id)
    return {"task_id": task_id, "state": "pending"}


def dead_letters(limit: int = 100) -> list[dict]:
    return [json.loads(e) for e in get_redis().lrange(keys.webhooks_dead(), 0, limit - 1)]


def dead_letters_replay(*, task_id: str | None = None) -> dict:
    """Re-enqueue dead deliveries (all, or one task's) and drop them from the list."""
    replayed = []
    for raw in get_redis().lrange(keys.webhooks_dead(), 0, -1):
        entry = json.loads(raw)
        if task_id is not None and entry["task_id"] != task_id:
            continue
        if get_redis().lrem(keys.webhooks_dead(), 1, raw) and webhook_schedule(
            task_id=entry["task_id"]
        ):
            replayed.append(entry["task_id"])
    return {"replayed": replayed}
