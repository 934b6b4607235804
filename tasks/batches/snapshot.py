"""What operators see of batches (monitor/status, the dashboard, /metrics): the active ones
with their live counts, read from the batches' own hashes."""

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks.batches.presenters import batch_object
from tasks.batches.records import batch_load

SHOWN = 50


def batches_snapshot(limit: int = SHOWN) -> dict:
    ids = sorted(get_redis().smembers(keys.batches_active()))
    active = [b for b in (batch_load(batch_id) for batch_id in ids) if b and not b.final]
    active.sort(key=lambda b: b.stamps.get("created_at", 0))
    by_status: dict[str, int] = {}
    waiting = 0
    for batch in active:
        by_status[batch.status] = by_status.get(batch.status, 0) + 1
        counts = batch.counts
        waiting += max(0, counts["total"] - counts["completed"] - counts["failed"])
    shown = [_row(batch) for batch in active[:limit]]
    return {"active": len(active), "by_status": by_status, "lines_waiting": waiting, "list": shown}


def _row(batch) -> dict:
    view = batch_object(batch)
    keep = ("id", "status", "endpoint", "created_at", "expires_at", "request_counts")
    return {name: view[name] for name in keep}
