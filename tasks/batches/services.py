"""Batch services: create, get, list, cancel. The POST answers at once; the runner (an rq job)
validates and enqueues."""

import json
import time
import uuid

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.errors import Conflict, NotFound, ServiceError
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import publish
from sop_llm.core.telemetry.stats import stats_incr
from tasks.batches import files
from tasks.batches.presenters import batch_object
from tasks.batches.records import Batch, batch_load, batch_move
from tasks.batches.runner import batch_schedule

LIST_LIMIT_MAX = 100


def batch_create(
    *,
    owner: str,
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    metadata: dict | None,
    webhook_url: str | None,
) -> dict:
    record = files.file_record(owner=owner, file_id=input_file_id)
    if record["purpose"] != "batch":
        raise ServiceError(
            f"file {input_file_id} has purpose {record['purpose']!r}, not 'batch'",
            code="invalid_value",
            field="input_file_id",
        )
    batch_id, now = f"batch_{uuid.uuid4().hex[:24]}", int(time.time())
    fields = {
        "id": batch_id,
        "owner": owner,
        "status": "validating",
        "endpoint": endpoint,
        "input_file_id": input_file_id,
        "completion_window": completion_window,
        "output_file": files.new_file_id(),
        "error_file": files.new_file_id(),
        "metadata": _json(metadata),
        "webhook_url": webhook_url or "",
        "created_at": now,
        "expires_at": now + settings.BATCH_WINDOW_SECONDS,
    }
    _store(fields, ttl=settings.BATCH_WINDOW_SECONDS + files.ttl_seconds())
    batch_schedule(batch_id=batch_id)
    return batch_object(batch_load(batch_id))


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":")) if value else ""


def _store(fields: dict, *, ttl: int) -> None:
    batch_id, owner = fields["id"], fields["owner"]
    pipe = get_redis().pipeline(transaction=False)
    pipe.hset(keys.batch(batch_id), mapping=fields)
    pipe.expire(keys.batch(batch_id), ttl)
    pipe.zadd(keys.batches_of(owner), {batch_id: time.time()})
    pipe.expire(keys.batches_of(owner), ttl)
    pipe.sadd(keys.batches_active(), batch_id)
    stats_incr(pipe, {"batches_created": 1})
    publish("batch.validating", pipe=pipe, batch_id=batch_id, status="validating")
    pipe.execute()


def _owned(owner: str, batch_id: str) -> Batch:
    batch = batch_load(batch_id)
    if batch is None or batch.owner != owner:  # another owner's batch does not exist for you
        raise NotFound(f"No such Batch object: {batch_id}")
    return batch


def batch_get(*, owner: str, batch_id: str) -> dict:
    return batch_object(_owned(owner, batch_id))


def batch_cancel(*, owner: str, batch_id: str) -> dict:
    """-> the batch, `cancelling` until every line is accounted for, then `cancelled`."""
    batch = _owned(owner, batch_id)
    if batch.status not in ("cancelling", "cancelled"):
        if not batch_move(batch_id, "cancelling", ("validating", "in_progress")):
            current = batch_load(batch_id)
            raise Conflict(
                f"batch {batch_id} is {current.status if current else 'gone'}; it cannot be "
                "cancelled",
                code="batch_not_cancellable",
            )
        publish("batch.cancelling", batch_id=batch_id, status="cancelling")
        batch_schedule(batch_id=batch_id)
    return batch_get(owner=owner, batch_id=batch_id)


def batch_list(*, owner: str, after: str | None, limit: int) -> dict:
    """Newest first; `after` is the last id of the previous page."""
    client = get_redis()
    ids = client.zrevrange(keys.batches_of(owner), 0, -1)
    if after is not None:
        ids = ids[ids.index(after) + 1 :] if after in ids else []
    page, gone = [], []
    for batch_id in ids:
        batch = batch_load(batch_id)
        if batch is None:
            gone.append(batch_id)
            continue
        page.append(batch_object(batch))
        if len(page) > limit:
            break
    if gone:  # expired with their TTL
        client.zrem(keys.batches_of(owner), *gone)
    return {
        "object": "list",
        "data": page[:limit],
        "first_id": page[0]["id"] if page else None,
        "last_id": page[:limit][-1]["id"] if page else None,
        "has_more": len(page) > limit,
    }
