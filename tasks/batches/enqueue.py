"""A batch's validated lines become ordinary tasks, a chunk at a time.

Each line's task has a derived id and the idempotency key `batch:{id}:{line}`, so a chunk run
again after a crash finds the tasks it made and makes no second one. Batch lines leave a share
of each lane's QUEUE_MAX_PENDING free, so a large batch never makes interactive POSTs see 429;
when its lane is that full the runner hands over (`later`) and a continuation picks up. A
chunk is stored in two round trips (tasks_create_many), not two per line."""

import time

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.providers import lane_for
from tasks import queue
from tasks.batches.files import ttl_seconds
from tasks.batches.input import parsed_forget, parsed_lines
from tasks.batches.lines import line_task_id
from tasks.batches.records import Batch, batch_load
from tasks.batches.validate import Line
from tasks.services import NewTask, tasks_create_many

CHUNK = 500
INTERACTIVE_SHARE = 0.2  # of QUEUE_MAX_PENDING per lane that batch lines leave free
WAIT_FOR_ROOM_SECONDS = 1.0


def lines_enqueue(batch: Batch, token: str, *, renew) -> str:
    """-> 'enqueued' (all of them), 'stop' (cancelled/expired meanwhile), 'later' (no room
    now), 'lost' (the lease went to another runner)."""
    lines = parsed_lines(batch)
    cursor = batch.counts["cursor"]
    while cursor < len(lines):
        made = _chunk_create(batch, _fitting(lines[cursor : cursor + CHUNK]))
        if made is None:
            return "later"
        cursor = made
        get_redis().hset(keys.batch(batch.id), "cursor", cursor)
        if not renew(batch.id, token):
            return "lost"
        current = batch_load(batch.id)
        if current is None or current.status != "in_progress" or current.expired:
            return "stop"
    get_redis().hset(keys.batch(batch.id), "enqueue_done", 1)
    parsed_forget(batch.id)
    return "enqueued"


def _limit() -> int:
    return max(1, int(settings.QUEUE_MAX_PENDING * (1 - INTERACTIVE_SHARE)))


def _fitting(chunk: list[Line]) -> list[Line]:
    """The head of the chunk that fits its lanes now (waiting a moment for room)."""
    deadline = time.monotonic() + WAIT_FOR_ROOM_SECONDS
    while True:
        room = {lane: _limit() - queue.depth(lane) for lane in ("gpu", "remote")}
        fits = []
        for line in chunk:
            lane = lane_for(line.data["provider"])
            if room[lane] <= 0:
                break
            room[lane] -= 1
            fits.append(line)
        if fits or time.monotonic() >= deadline:
            return fits
        time.sleep(0.1)


def _chunk_create(batch: Batch, chunk: list[Line]) -> int | None:
    """The chunk's tasks, in two round trips. -> the number of the last line of the run of
    lines that are now tasks (made now, or found by their idempotency key), None if none."""
    if not chunk:
        return None
    outcomes = tasks_create_many(items=[_new_task(batch, line) for line in chunk])
    made = None
    for line, outcome in zip(chunk, outcomes, strict=True):
        if outcome == "full":  # interactive work filled the lane meanwhile: it goes first
            break
        made = line.number
    return made


def _new_task(batch: Batch, line: Line) -> NewTask:
    link = {
        "id": batch.id,
        "line": line.number,
        "custom_id": line.custom_id,
        "url": batch.endpoint,
        "model": line.model,
        "output_file": batch.output_file,
        "error_file": batch.error_file,
        "ttl": ttl_seconds(),
        "expires_at": batch.stamps["expires_at"],
    }
    return NewTask(
        data=line.data,
        idempotency_key=f"batch:{batch.id}:{line.number}",
        owner=batch.owner,
        task_id=line_task_id(batch.id, line.number),
        batch=link,
    )
