"""Cancelling a batch's enqueued lines: a queued task leaves its lane at once; a running one
is asked to stop at its next token, like any cancelled task."""

from sop_llm.core import keys
from sop_llm.core.errors import ServiceError
from sop_llm.core.redis import get_redis
from tasks import lifecycle, store
from tasks.batches.lines import line_task_id
from tasks.batches.records import Batch
from tasks.services import task_cancel
from tasks.status import TaskStatus

CHUNK = 500


def tasks_cancel(batch: Batch, *, upto: int) -> int:
    """Cancel lines 1..upto that have not finished. -> how many were asked to stop."""
    asked = 0
    for start in range(1, upto + 1, CHUNK):
        ids = [line_task_id(batch.id, n) for n in range(start, min(start + CHUNK, upto + 1))]
        pipe = get_redis().pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(keys.session(task_id), "status")
        for task_id, status in zip(ids, pipe.execute(), strict=True):
            asked += _cancel_one(task_id, status)
    return asked


def _cancel_one(task_id: str, status: str | None) -> int:
    if status == TaskStatus.QUEUED:
        task = store.load(task_id)
        message = "The batch was cancelled before this request was run."
        return int(
            bool(task) and lifecycle.task_cancel(task, code="batch_cancelled", message=message)
        )
    if status == TaskStatus.PROCESSING:
        try:
            task_cancel(task_id=task_id)
        except ServiceError:  # it finished meanwhile
            return 0
        return 1
    return 0
