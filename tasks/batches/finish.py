"""The end of a batch: once every line is written, its files are registered and it moves to
completed / expired / cancelled, with its event and its webhook. Safe to run twice: the final
move is guarded, and only the run that made it announces it."""

import logging

import redis

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import publish
from sop_llm.core.telemetry.stats import stats_incr
from tasks.batches import files
from tasks.batches.presenters import batch_object
from tasks.batches.records import Batch, batch_load, batch_move, batch_progress
from tasks.batches.webhook import batch_webhook_schedule

log = logging.getLogger(__name__)


def batch_settle(*, batch_id: str) -> str | None:
    """After a line finished (or a sweep): end the batch if nothing is outstanding. Only a
    Redis outage escapes (the caller retries); anything else is logged and left to the sweep,
    never charged to the task whose line was just written."""
    try:
        if batch_progress(batch_id):
            return batch_finish(batch_id=batch_id)
    except (redis.ConnectionError, redis.TimeoutError):
        raise
    except Exception:
        log.exception("batch %s: ending it failed; the recovery sweep will retry", batch_id)
    return None


def batch_finish(*, batch_id: str) -> str | None:
    batch = batch_load(batch_id)
    if batch is None or batch.status not in ("finalizing", "cancelling"):
        return None
    if batch.status == "cancelling":
        end = "cancelled"
    else:
        end = "expired" if batch.counts["expired_lines"] else "completed"
    ids = _register_files(batch)
    if not batch_move(batch_id, end, (batch.status,), **ids):
        return None
    get_redis().expire(keys.batch(batch_id), files.ttl_seconds())  # kept as long as its files
    batch_announce(batch_id=batch_id, status=end)
    return end


def _register_files(batch: Batch) -> dict:
    ids = {}
    for name, file_id, lines in (
        ("output_file_id", batch.output_file, batch.counts["completed"]),
        ("error_file_id", batch.error_file, batch.counts["failed"]),
    ):
        if get_redis().exists(keys.file_content(file_id)):
            purpose = "batch_output"
            suffix = "output" if name == "output_file_id" else "error"
            files.file_register(
                owner=batch.owner,
                file_id=file_id,
                purpose=purpose,
                filename=f"{batch.id}_{suffix}.jsonl",
                lines=lines,
            )
            ids[name] = file_id
    return ids


def batch_announce(*, batch_id: str, status: str) -> None:
    """The `batch.{status}` event; a final status also counts and calls the webhook."""
    batch = batch_load(batch_id)
    if batch is None:
        return
    pipe = get_redis().pipeline(transaction=False)
    publish(
        f"batch.{status}",
        pipe=pipe,
        batch_id=batch_id,
        status=status,
        request_counts=request_counts(batch),
    )
    if batch.final:
        stats_incr(pipe, {f"batches_{status}": 1})
    pipe.execute()
    if batch.final and batch.webhook_url:
        batch_webhook_schedule(batch_id=batch_id)


def request_counts(batch: Batch) -> dict:
    return batch_object(batch)["request_counts"]
