"""A batch's own webhook: `batch.completed` / `batch.failed` / `batch.expired` /
`batch.cancelled`, signed like task webhooks (Standard Webhooks) and retried the same way, on
the `webhooks` queue. Attempts are recorded on the batch."""

import json
import time
import uuid

from sop_llm.core import keys
from sop_llm.core.lanes import rq_queue
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.stats import stats_incr
from tasks.batches.presenters import batch_object
from tasks.batches.records import batch_load
from tasks.webhooks import deliver_with_retries, delivery_job_timeout, signed_headers

DELIVER_JOB = "tasks.batches.jobs.deliver_batch_webhook"  # by name: nothing imports the jobs module


def batch_webhook_schedule(*, batch_id: str) -> None:
    rq_queue("webhooks").enqueue(
        DELIVER_JOB, batch_id, job_timeout=delivery_job_timeout(), result_ttl=0, failure_ttl=86400
    )


def batch_webhook_deliver(*, batch_id: str, sleep=time.sleep) -> str:
    batch = batch_load(batch_id)
    if batch is None:
        return "expired"
    delivery_id, event = f"msg_{uuid.uuid4().hex}", f"batch.{batch.status}"
    payload = {"event": event, "delivery_id": delivery_id, "batch": batch_object(batch)}
    body = json.dumps(payload, separators=(",", ":"))

    def headers_for(attempt: int) -> dict[str, str]:
        headers = signed_headers(delivery_id, body, task_id="", event=event, attempt=attempt)
        del headers["X-SOP-Task-Id"]
        return headers | {"X-SOP-Batch-Id": batch_id}

    attempts = deliver_with_retries(
        batch.webhook_url, body, headers_for, on_attempt=lambda outcome: None, sleep=sleep
    )
    state = "delivered" if attempts[-1]["ok"] else "failed"
    record = {"state": state, "delivery_id": delivery_id, "attempts": attempts}
    pipe = get_redis().pipeline(transaction=False)
    pipe.hset(keys.batch(batch_id), "webhook", json.dumps(record, separators=(",", ":")))
    stats_incr(pipe, {f"webhook_{state}": 1})
    pipe.execute()
    return state
