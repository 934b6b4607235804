"""rq worker classes.

Both run jobs in the worker's own process (SimpleWorker, no fork per job): the GPU worker must
keep its loaded model between tasks (a fork would lose it, and CUDA does not survive a fork), and
the remote lanes save a fork per task. A heartbeat thread keeps our liveness key and rq's job
heartbeats fresh while a long job runs, and runs crash recovery now and then.

    manage.py rqworker gpu --worker-class tasks.worker.workers.GpuWorker
    manage.py rqworker remote --worker-class tasks.worker.workers.HeartbeatWorker
    manage.py rqworker webhooks --worker-class tasks.worker.workers.HeartbeatWorker
"""

import logging
import threading
import time

import redis
from django.conf import settings
from rq import SimpleWorker

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks.hooks import recover_hooks_run
from tasks.liveness import alive_record
from tasks.worker.identity import running, set_current_worker_name, stop_requested
from tasks.worker.recovery import tasks_recover, tasks_recover_if_due
from tasks.worker.rq_lean import LeanBookkeeping

log = logging.getLogger(__name__)
RECOVERY_EVERY_BEATS = 3
REDIS_RETRY_FIRST_SECONDS, REDIS_RETRY_MAX_SECONDS = 0.25, 5.0
# rq's command channel is read in a thread; each read this long at most (rq's own: 60 s).
COMMAND_READ_SECONDS = 0.5
REDIS_OUTAGE_MAX_SECONDS = 120  # then rq's own handling (the worker ends; a supervisor restarts)
# A refused connection and a timed-out one are the same outage to a worker: rq quits on a
# timeout, and a loaded or just-promoted master can answer a connect or a read late.
OUTAGE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
STARTED_AT = time.time()


class HeartbeatWorker(LeanBookkeeping, SimpleWorker):
    max_connection_wait_time = REDIS_RETRY_MAX_SECONDS  # rq's own backoff would reach 60 s
    log_result_lifespan = False  # "result discarded immediately": every job of ours keeps none

    def work(self, *args, **kwargs):
        set_current_worker_name(self.name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recover_at_start()
        # django-rq's command asks for INFO (its verbosity, not the operator's level), and rq
        # sets its loggers to what it is given: ~4 lines a job, each shipped to Redis.
        kwargs["logging_level"] = settings.LOG_LEVEL
        try:
            return super().work(*args, **kwargs)
        finally:
            self._stop.set()
            if self._thread is not None and self._thread.is_alive():  # a stop may beat its start
                self._thread.join(timeout=5)
            get_redis().delete(keys.worker_alive(self.name))
            set_current_worker_name(None)

    def _install_signal_handlers(self):
        # Announce liveness only once SIGTERM means "finish the job, then stop" (rq installs
        # its handlers after start-up), so a stop never leaves a stale liveness key behind.
        super()._install_signal_handlers()
        self._beat()
        self._thread = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        self._thread.start()

    def subscribe(self):
        """rq's, with short reads: its stop joins this reader thread, and redis-py (8.2+)
        waits in that join for the read under way, so a worker's end (and every burst) could
        stall for most of a minute."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=COMMAND_READ_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def request_stop(self, signum, frame):
        stop_requested()  # a slot scheduler stops admitting; running tasks finish
        return super().request_stop(signum, frame)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """rq waits out a lost connection only around its blocking pop; its bookkeeping just
        before and after it (state, heartbeat) raises instead and ends the worker. A Redis
        restart or Sentinel failover between jobs is waited out here, with backoff."""
        wait = REDIS_RETRY_FIRST_SECONDS
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except OUTAGE_ERRORS as exc:
                if self._stop_requested:
                    return None  # rq's loop then stops as asked
                log.warning("Redis unreachable between jobs (%s); retrying in %g s", exc, wait)
                time.sleep(wait)
                wait = min(wait * 2, REDIS_RETRY_MAX_SECONDS)

    # rq's bookkeeping after a job raises on a lost connection, and its loop then ends the
    # worker: retried through a Redis restart or failover instead (the task's own result is
    # already kept by the processor, which retries on its own).
    def handle_job_success(self, *args, **kwargs):
        return _through_outage(super().handle_job_success, *args, **kwargs)

    def handle_job_failure(self, *args, **kwargs):
        return _through_outage(super().handle_job_failure, *args, **kwargs)

    def handle_execution_ended(self, *args, **kwargs):
        return _through_outage(super().handle_execution_ended, *args, **kwargs)

    def heartbeat(self, *args, **kwargs):
        return _through_outage(super().heartbeat, *args, **kwargs)

    def set_state(self, *args, **kwargs):
        return _through_outage(super().set_state, *args, **kwargs)

    def lanes(self) -> list[str]:
        prefix = keys.prefix()
        return [q.name.removeprefix(prefix) for q in self.queues]

    def _recover_at_start(self) -> None:
        try:
            report = tasks_recover()
            if report["requeued"] or report["failed"]:
                log.warning("recovery at start-up: %s", report)
            recover_hooks_run()
        except redis.RedisError as exc:
            log.warning("recovery at start-up skipped: %s", exc)

    def _beat(self) -> None:
        ttl = max(2, int(settings.WORKER_HEARTBEAT_SECONDS * 3))
        record = alive_record(self.name, self.lanes(), running(), STARTED_AT)
        get_redis().set(keys.worker_alive(self.name), record, ex=ttl)
        job = self.get_current_job()
        if job is not None:
            self.maintain_heartbeats(job)

    def _heartbeat_loop(self) -> None:
        beats = 0
        while not self._stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            beats += 1
            try:
                self._beat()
                self.on_heartbeat()
                if beats % RECOVERY_EVERY_BEATS == 0:
                    ttl = max(1, int(settings.WORKER_HEARTBEAT_SECONDS * RECOVERY_EVERY_BEATS))
                    if tasks_recover_if_due(ttl) is not None:
                        recover_hooks_run()
            except redis.RedisError as exc:  # Redis blips: keep beating, it comes back
                log.warning("heartbeat failed: %s", exc)
            except Exception:
                log.exception("heartbeat error")

    def on_heartbeat(self) -> None:
        """Hook for subclasses (the GPU lock renews itself: models_gpu/lease.py)."""


def _through_outage(call, *args, **kwargs):
    wait, deadline = REDIS_RETRY_FIRST_SECONDS, time.monotonic() + REDIS_OUTAGE_MAX_SECONDS
    while True:
        try:
            return call(*args, **kwargs)
        except OUTAGE_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("Redis unreachable after a job (%s); retrying in %g s", exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, REDIS_RETRY_MAX_SECONDS)


class GpuWorker(HeartbeatWorker):
    """The one process that touches its GPU (GPU_ID): owns the GPU lock for its whole life."""

    def work(self, *args, **kwargs):
        from models_gpu.guard import gpu_guard
        from models_gpu.ticker import GpuTicker

        set_current_worker_name(self.name)
        gpu_guard().claim(owner=self.name, wait=True)
        ticker = GpuTicker().start()
        try:
            return super().work(*args, **kwargs)
        finally:
            ticker.stop()
            gpu_guard().shutdown()
