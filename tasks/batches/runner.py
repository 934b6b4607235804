"""The batch runner: an rq job (by batch id) that validates the input file, enqueues its
lines as ordinary tasks in chunks (tasks.batches.enqueue), or stops a cancelled / expired
batch.

One runner at a time holds the batch's lease. Every step can be cut off by a kill -9 and run
again: a line's task has a derived id and an idempotency key (batch id + line number), the
cursor says which lines are handled, and lines that will never run are written together with
the cursor that covers them. The recovery sweep (tasks.batches.sweep) schedules a runner for a
batch that needs one and has none.
"""

import json
import os
import socket
import uuid

from sop_llm.core import keys
from sop_llm.core.lanes import rq_queue
from sop_llm.core.procs import provably_dead
from sop_llm.core.redis import get_redis
from tasks import lua
from tasks.batches.enqueue import lines_enqueue
from tasks.batches.files import ttl_seconds
from tasks.batches.finish import batch_announce, batch_settle
from tasks.batches.input import input_lines, parse_all, parsed_forget, skipped_lines
from tasks.batches.lua import RELEASE
from tasks.batches.records import Batch, batch_load, batch_move, lines_skip
from tasks.batches.stop import tasks_cancel

RUN_JOB = "tasks.batches.jobs.run_batch"  # by name: nothing imports the jobs module
LEASE_SECONDS = 60
JOB_TIMEOUT_SECONDS = 3600
STOP_CHUNK = 500


def batch_schedule(*, batch_id: str, front: bool = True) -> None:
    """Queue a runner on the remote lane: ahead of its tasks, unless it is a continuation
    waiting for room in the queue."""
    rq_queue("remote").enqueue_call(
        RUN_JOB,
        args=(batch_id,),
        timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=0,
        failure_ttl=86400,
        description=f"run batch {batch_id}",
        at_front=front,
    )


def needs_runner(batch: Batch | None) -> bool:
    if batch is None or batch.final:
        return False
    if batch.status == "validating":
        return True
    if batch.status == "cancelling":
        return not batch.counts["stopped"]
    return batch.status == "in_progress" and not batch.counts["enqueue_done"]


def lease_token() -> str:
    """Names its holder, so that the sweep can break the lease of a process that died."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex})


def lease_break_if_dead(batch_id: str) -> bool:
    """-> whether the batch is free to run (no lease, or its holder's pid is gone)."""
    holder = get_redis().get(keys.batch_lease(batch_id))
    if holder and provably_dead(holder):
        _lease_release(batch_id, holder)
        return True
    return holder is None


def _lease_release(batch_id: str, token: str) -> None:
    """Let go of the lease, unless it is no longer `token`'s (RELEASE)."""
    lease = RELEASE.keylist(lease=keys.batch_lease(batch_id))
    lua.run(RELEASE, keys=lease, args=RELEASE.argv(token=token))


def batch_run(*, batch_id: str) -> str:
    token = lease_token()
    if not get_redis().set(keys.batch_lease(batch_id), token, nx=True, ex=LEASE_SECONDS):
        return "busy"  # another runner has it
    try:
        outcome = _steps(batch_id, token)
    finally:
        _lease_release(batch_id, token)
    # A cancel that came while this runner held the lease found it busy: look once more.
    if outcome == "later" or needs_runner(batch_load(batch_id)):
        batch_schedule(batch_id=batch_id, front=outcome != "later")
    batch_settle(batch_id=batch_id)
    return outcome


def lease_renew(batch_id: str, token: str) -> bool:
    """False when the lease is no longer ours (it lapsed and another runner took it)."""
    client = get_redis()
    if client.get(keys.batch_lease(batch_id)) != token:
        return False
    return bool(client.expire(keys.batch_lease(batch_id), LEASE_SECONDS))


def _steps(batch_id: str, token: str) -> str:
    while True:
        batch = batch_load(batch_id)
        if not needs_runner(batch):
            return "done"
        if batch.status == "validating":
            outcome = _validate(batch)
        elif batch.status == "cancelling" or batch.expired:
            outcome = _stop(batch, token)
        else:
            outcome = lines_enqueue(batch, token, renew=lease_renew)
        if outcome in ("later", "lost"):
            return outcome


def _validate(batch: Batch) -> str:
    lines, errors = parse_all(batch)
    if errors:
        if batch_move(batch.id, "failed", ("validating",), errors=json.dumps(errors)):
            batch_announce(batch_id=batch.id, status="failed")
        return "failed"
    if batch_move(batch.id, "in_progress", ("validating",), total=len(lines)):
        batch_announce(batch_id=batch.id, status="in_progress")
    return "validated"


def _stop(batch: Batch, token: str) -> str:
    """Lines never enqueued go to the error file; enqueued ones are cancelled (a cancel) or
    left to their deadline, which is the batch's window (an expiry)."""
    code = "batch_cancelled" if batch.status == "cancelling" else "batch_expired"
    parsed_forget(batch.id)
    raw = input_lines(batch)
    total = batch.counts["total"] or len(raw)  # cancelled before validation counted them
    enqueued = cursor = batch.counts["cursor"]
    get_redis().hset(keys.batch(batch.id), "total", total)
    while cursor < total:
        end = min(cursor + STOP_CHUNK, total)
        text = skipped_lines(batch, raw, cursor, end, code=code)
        lines_skip(batch, cursor=cursor, new_cursor=end, lines=text, ttl=ttl_seconds())
        cursor = end
        if not lease_renew(batch.id, token):
            return "lost"
    if code == "batch_cancelled":
        tasks_cancel(batch, upto=enqueued)
    marks = {"enqueue_done": 1, "stopped": 1}
    if code == "batch_expired":
        marks["expired_lines"] = 1
    get_redis().hset(keys.batch(batch.id), mapping=marks)
    return "stopped"
