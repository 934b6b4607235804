"""Crash recovery: no task stays `processing` once nobody works on it.

Workers refresh `worker:alive:{name}` (pid, host, the tasks they run now) every heartbeat. A
task in a lane's processing hash is lost when its worker has no live record, when the record's
pid is gone on this very host, or when the worker is alive but no longer runs it (it lost the
task in a Redis outage, say). A lost task is requeued (up to TASK_MAX_ATTEMPTS runs) or failed
with `worker_lost`. Runs at worker start-up and from every worker's heartbeat (one at a time,
under a Redis lock), together with the deadline sweep.
"""

import contextlib
import datetime as dt
import logging
import os

from django.conf import settings
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from sop_llm.core import keys
from sop_llm.core.lanes import LANES, TASK_LANES, rq_queue
from sop_llm.core.redis import get_redis, new_rq_redis
from tasks import lifecycle, queue, store
from tasks.charges import charged, killed_attempt
from tasks.liveness import lost_tasks, worker_alive

log = logging.getLogger(__name__)


def rq_forget_dead_workers() -> list[str]:
    """rq keeps a killed worker registered, its job 'started', until its key expires minutes
    later (so `rqstats` counts the dead); our liveness record knows within heartbeats."""
    forgotten = []
    with new_rq_redis() as connection:
        for lane in LANES:
            rq_lane = Queue(rq_queue(lane).name, connection=connection)
            for worker in Worker.all(queue=rq_lane):
                if _rq_worker_dead(worker):
                    _fail_rq_job(rq_lane, worker.get_current_job_id())
                    worker.register_death()
                    forgotten.append(worker.name)
    return forgotten


def _rq_worker_dead(worker: Worker) -> bool:
    """No liveness record of ours, and rq's own heartbeat has aged (not a worker just born)."""
    if worker_alive(worker.name):
        return False
    beat = worker.last_heartbeat or worker.birth_date
    stale_after = dt.timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    return beat is None or dt.datetime.now(dt.UTC) - _aware(beat) >= stale_after


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _fail_rq_job(rq_lane, job_id: str | None) -> None:
    """What rq's own cleanup does for an abandoned job, without waiting for its expiry."""
    if not job_id:
        return
    with contextlib.suppress(NoSuchJobError), rq_lane.connection.pipeline() as pipe:
        job = Job.fetch(job_id, connection=rq_lane.connection)
        StartedJobRegistry(queue=rq_lane).remove_executions(job, pipeline=pipe)
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        FailedJobRegistry(queue=rq_lane).add(job, exc_string="its worker died", pipeline=pipe)
        pipe.execute()


def tasks_recover() -> dict:
    """Requeue or fail lost tasks, fail expired ones, wake lanes whose jobs were lost."""
    report = {"requeued": [], "failed": [], "woken": {}, "expired": lifecycle.deadlines_sweep()}
    report["forgotten_workers"] = rq_forget_dead_workers()
    for task, why in lost_tasks():
        _recover_task(task, why, report)
    for lane in TASK_LANES:
        missing = queue.depth(lane) - rq_queue(lane).count
        if missing > 0:
            queue.wake(lane, missing)
            report["woken"][lane] = missing
    return report


def _recover_task(task: store.Task, why: str, report: dict) -> None:
    runs, limit = task.crash_count + 1, settings.TASK_MAX_ATTEMPTS
    log.warning(
        "task %s lost (%s) on %s (run %d of at most %d)",
        task.task_id,
        why,
        task.worker,
        runs,
        limit,
    )
    killed = killed_attempt(task, why)
    if runs < limit and lifecycle.task_requeue(task, reason="worker_lost", lost=killed):
        report["requeued"].append(task.task_id)
        return
    message = (
        f"{why} (run {runs}; TASK_MAX_ATTEMPTS={limit}): not retried again, in case the task "
        "itself brings workers down"
    )
    tried = [*(task.lost_attempts or []), killed]
    kept = {"attempts": tried, "charged": charged(tried), "crash_count": runs}
    if lifecycle.task_fail(task, code="worker_lost", message=message, **kept):
        report["failed"].append(task.task_id)


def tasks_recover_if_due(ttl_seconds: int) -> dict | None:
    """Run recovery unless another process did so within `ttl_seconds`."""
    if not get_redis().set(keys.recovery_lock(), os.getpid(), nx=True, ex=ttl_seconds):
        return None
    return tasks_recover()
