"""rq's per-job bookkeeping in two round trips instead of about twelve (issue #32).

rq writes a job's start in three steps (the execution record, the worker's state, the job's
own fields), a job heartbeat when it ends, then a WATCHed transaction for its dependents and a
cleanup that reads the job's status three times and its executions twice, then the worker's
state and heartbeat again, and again with a suspension check before the next pop: ~60
commands a job. A job of ours carries no dependents, callbacks or result (every job takes ids
and calls a service; the task's own record, timeline and liveness are ours), so rq's records of
it are written here in one pipeline at its start and one at its end, with the same keys and
fields rq leaves: `rqstats`, rq's registries (a running job is in StartedJobRegistry) and
tasks.recovery (the worker's `current_job`) read what they always read. Any other job (a result
kept, a callback, a dependency) takes rq's own path.

The pipelines are not transactions: their commands arrive in one write and run in order, and
nothing reads rq's records half-written but rq's own dashboards.

Heartbeats, states and the suspension check that rq repeats around every pop are written at
most once per WORKER_HEARTBEAT_SECONDS: the worker key lives `worker_ttl + 60` seconds, and
`rq suspend` then takes effect within that time instead of before the next job.
"""

import time

from django.conf import settings
from rq.executions import Execution
from rq.job import Job, _job_stack
from rq.utils import now, utcformat
from rq.worker import WorkerStatus


def lean(job: Job) -> bool:
    """Does this job need nothing of rq beyond its start and end records?"""
    return (
        job.result_ttl == 0
        and not job._success_callback_name
        and not job._failure_callback_name
        and not job._stopped_callback_name
        and not job._dependency_ids
        and job.repeats_left is None
    )


class LeanJob(Job):
    """rq's Job, less the PERSIST before each run (a round trip of its own): a job enqueued
    without a `ttl`, as every one of ours is, has no expiry to remove."""

    def perform(self):
        if self.ttl is not None:
            return super().perform()
        _job_stack.push(self)  # what rq.get_current_job() reads
        try:
            self._result = self._execute()
        finally:
            assert self is _job_stack.pop()
        return self._result


class LeanBookkeeping:
    """Mixed into an rq worker class (before it): rq's records of a lean job, batched."""

    job_class = LeanJob

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.job_class is Job:  # django-rq hands rq's default over explicitly
            self.job_class = LeanJob

    _start = None  # the pipeline the start of a lean job's records gather in
    _beat_at = 0.0  # monotonic time of the last worker heartbeat written
    _suspension_checked_at = 0.0

    def _due(self, since: float) -> bool:
        return time.monotonic() - since >= settings.WORKER_HEARTBEAT_SECONDS

    def prepare_execution(self, job: Job) -> Execution:
        if not lean(job):
            return super().prepare_execution(job)
        self._start = self.connection.pipeline(transaction=False)
        ttl = self.get_heartbeat_ttl(job)
        self.execution = Execution.create(job, ttl, pipeline=self._start, worker_name=self.name)
        return self.execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False):
        pipe, self._start = self._start, None
        if pipe is None:
            return super().prepare_job_execution(job, remove_from_intermediate_queue)
        with pipe:
            ttl = self.get_heartbeat_ttl(job)
            self._worker_fields(
                pipe,
                ttl,
                state=WorkerStatus.BUSY,
                current_job=job.id,
                current_job_working_time=0,
            )
            self.current_job_working_time = 0
            job.prepare_for_execution(self.name, pipeline=pipe)  # its heartbeat included
            if remove_from_intermediate_queue:
                pipe.lrem(self.queues[0].intermediate_queue_key, 1, job.id)
            pipe.execute()

    def handle_execution_ended(self, job: Job, queue, heartbeat_ttl: int):
        # rq's job heartbeat here covers its callbacks, which a lean job has none of; the
        # job's hash is deleted in the very next step.
        if not lean(job):
            return super().handle_execution_ended(job, queue, heartbeat_ttl)
        job.ended_at = now()

    def handle_job_success(self, job: Job, queue, started_job_registry):
        if not lean(job) or self.execution is None:
            return super().handle_job_success(job, queue, started_job_registry)
        with self.connection.pipeline(transaction=False) as pipe:
            self.increment_successful_job_count(pipeline=pipe)
            self.increment_total_working_time(job.ended_at - job.started_at, pipe)
            # What job.cleanup(0) and cleanup_execution() leave (they read the job's status
            # three times and its executions twice to get there): this run's execution out of
            # StartedJobRegistry, the job, its execution and its executions set gone.
            pipe.zrem(job.started_job_registry.key, self.execution.composite_key)
            pipe.delete(
                self.execution.key,
                job.execution_registry.key,
                job.key,
                job.dependents_key,
                job.dependencies_key,
            )
            pipe.hdel(self.key, "current_job")
            self.execution = None
            self._worker_fields(pipe, self.worker_ttl + 60, state=WorkerStatus.IDLE)
            pipe.execute()
        self.log.info("Successfully completed job %s on worker %s", job.id, self.name)

    def _worker_fields(self, pipe, ttl: int, **fields) -> None:
        """rq's worker-hash writes of a job's start or end (state, heartbeat, current job)
        as one HSET, and the in-memory state rq keeps beside them."""
        self._state = fields["state"]
        self.last_heartbeat = now()
        self._beat_at = time.monotonic()
        pipe.hset(self.key, mapping={**fields, "last_heartbeat": utcformat(self.last_heartbeat)})
        pipe.expire(self.key, ttl)

    def set_state(self, state: str, pipeline=None):
        if pipeline is None and state == self.get_state():
            return None  # written already (rq sets IDLE after a job and before each pop)
        return super().set_state(state, pipeline=pipeline)

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        if pipeline is None and timeout is None and not self._due(self._beat_at):
            return None  # rq beats before and after every pop and after every job
        self._beat_at = time.monotonic()
        return super().heartbeat(timeout, pipeline=pipeline)

    def check_for_suspension(self, burst: bool):
        if not self._due(self._suspension_checked_at):
            return None
        self._suspension_checked_at = time.monotonic()
        return super().check_for_suspension(burst)
