"""rq worker classes.

Both run jobs in the worker's own process (SimpleWorker, no fork per job): the GPU worker must
keep its loaded model between tasks (a fork would lose it, and CUDA does not survive a fork), and
the remote lanes save a fork per task. A heartbeat thread keeps our liveness key and rq's job
heartbeats fresh while a long job runs, and runs crash recovery now and then.

    manage.py rqworker gpu --worker-class tasks.worker.GpuWorker
    manage.py rqworker remote --worker-class tasks.worker.HeartbeatWorker
    manage.py rqworker webhooks --worker-class tasks.worker.HeartbeatWorker
"""

import logging
import threading
import time

import redis
from django.conf import settings
from rq import SimpleWorker

from sop_llm import keys
from sop_llm.redis import get_redis
from tasks.batches.sweep import batches_recover
from tasks.recovery import alive_record, tasks_recover, tasks_recover_if_due
from tasks.worker_identity import running, set_current_worker_name, stop_requested

log = logging.getLogger(__name__)
RECOVERY_EVERY_BEATS = 3
STARTED_AT = time.time()


class HeartbeatWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        set_current_worker_name(self.name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recover_at_start()
        try:
            return super().work(*args, **kwargs)
        finally:
            self._stop.set()
            if self._thread is not None:
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

    def request_stop(self, signum, frame):
        stop_requested()  # a slot scheduler stops admitting; running tasks finish
        return super().request_stop(signum, frame)

    def lanes(self) -> list[str]:
        prefix = keys.prefix()
        return [q.name.removeprefix(prefix) for q in self.queues]

    def _recover_at_start(self) -> None:
        try:
            report = tasks_recover()
            if report["requeued"] or report["failed"]:
                log.warning("recovery at start-up: %s", report)
            batches_recover()
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
                        batches_recover()
            except redis.RedisError as exc:  # Redis blips: keep beating, it comes back
                log.warning("heartbeat failed: %s", exc)
            except Exception:
                log.exception("heartbeat error")

    def on_heartbeat(self) -> None:
        """Hook for subclasses (the GPU worker renews its GPU lock here)."""


class GpuWorker(HeartbeatWorker):
    """The one process that touches the GPU: owns the GPU lock for its whole life."""

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

    def on_heartbeat(self) -> None:
        from models_gpu.guard import gpu_guard

        gpu_guard().renew()
