"""What the API shows of a Message Batch: Anthropic's MessageBatch object."""

from datetime import UTC, datetime

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks.batches.messages import public_id
from tasks.batches.records import Batch

PROCESSING = {"cancelling": "canceling"}  # the runner's status -> Anthropic's
ENDED = ("completed", "failed", "expired", "cancelled")
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


def _time(stamp: int | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def message_batch_object(batch: Batch, *, results_url: str) -> dict:
    ended = batch.status in ENDED
    return {
        "id": public_id(batch.id),
        "type": "message_batch",
        "processing_status": "ended" if ended else PROCESSING.get(batch.status, "in_progress"),
        "request_counts": request_counts(batch),
        "created_at": _time(batch.stamps.get("created_at")),
        "expires_at": _time(batch.stamps.get("expires_at")),
        "ended_at": _time(batch.stamps.get(f"{batch.status}_at")) if ended else None,
        "cancel_initiated_at": _time(batch.stamps.get("cancelling_at")),
        "archived_at": None,
        "results_url": results_url if ended else None,
    }


def request_counts(batch: Batch) -> dict:
    """By result type. Lines that never ran were written by the runner in one step, counted
    only as failed: they are what failed lines the results do not account for."""
    raw = get_redis().hmget(keys.batch(batch.id), [f"result_{t}" for t in RESULT_TYPES])
    counts = dict(zip(RESULT_TYPES, (int(v or 0) for v in raw), strict=True))
    counts["succeeded"] = batch.counts["completed"]
    never_ran = batch.counts["failed"] - counts["errored"] - counts["canceled"] - counts["expired"]
    cancelled = batch.status in ("cancelling", "cancelled")
    counts["canceled" if cancelled else "expired"] += max(0, never_ran)
    done = batch.counts["completed"] + batch.counts["failed"]
    return {"processing": max(0, batch.counts["total"] - done), **counts}
