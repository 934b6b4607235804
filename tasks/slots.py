"""Several local tasks in flight in one GPU worker (GPU_SLOTS > 1).

The job that finds the lane busy becomes its scheduler: it claims up to GPU_SLOTS tasks, in the
lane's priority order, and runs each in a thread of its own through the ordinary processor
(fallbacks, lifecycle, report); the local provider's generations from those threads meet in
the model's one batched decode loop. A freed slot takes the next task at once. A task for a
model other than the loaded one waits until the batch has drained, so a swap never cuts a
running answer. The scheduler stops admitting when the worker is asked to stop, or when its rq
job has run for TASK_MAX_TIMEOUT_SECONDS (the jobs queued behind it carry on), and returns
when its slots are empty.
"""

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.conf import settings

from models_gpu.guard import preferred_model_key
from tasks import lifecycle, worker_identity
from tasks.cancel import cancel_watch
from tasks.processor import task_claim_next, task_run_claimed
from tasks.store import Task, load

# How often a scheduler with free slots looks for newly queued tasks while others generate.
ADMIT_EVERY_SECONDS = 0.1


def task_process_slots(*, lane: str, slots: int) -> list[str]:
    """Run the lane's tasks `slots` at a time until none is left -> the ids it finished."""
    scheduler = _Scheduler(lane, slots)
    try:
        return scheduler.run()
    except BaseException:  # a cold stop or the job's timeout: hand every slot's task back
        _requeue_all(scheduler.in_flight())
        raise
    finally:
        scheduler.pool.shutdown(wait=False, cancel_futures=True)


class _Scheduler:
    def __init__(self, lane: str, slots: int):
        self.lane, self.slots = lane, slots
        self.deadline = time.monotonic() + settings.TASK_MAX_TIMEOUT_SECONDS
        self.pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="slot")
        self.running: dict[Future, str] = {}
        self.model = ""  # of the tasks running now: one model at a time (it may be loading)
        self.held: Task | None = None  # claimed for another model: runs once the batch drains
        self.finished: list[str] = []

    def run(self) -> list[str]:
        while True:
            self._admit()
            if self.held is not None and not self.running:
                self._start(self.held)
                self.held = None
            if not self.running:
                return self.finished
            done, _ = wait(self.running, timeout=ADMIT_EVERY_SECONDS, return_when=FIRST_COMPLETED)
            self.finished += [_collect(future, self.running) for future in done]

    def _admit(self) -> None:
        while self._admitting() and self.held is None and len(self.running) < self.slots:
            preferred = self.model or preferred_model_key()
            task = task_claim_next(lane=self.lane, preferred_model=preferred)
            if task is None:
                return
            if self.running and task.model_key != self.model:
                self.held = task
            else:
                self._start(task)

    def _admitting(self) -> bool:
        return not worker_identity.stopping() and time.monotonic() < self.deadline

    def _start(self, task: Task) -> None:
        self.model = task.model_key
        self.running[self.pool.submit(task_run_claimed, task)] = task.task_id

    def in_flight(self) -> list[str]:
        return [*self.running.values(), *([self.held.task_id] if self.held else [])]


def _collect(future: Future, running: dict[Future, str]) -> str:
    task_id = running.pop(future)
    future.exception()  # the task is final either way; its error is in its report and logs
    return task_id


def _requeue_all(task_ids: list[str]) -> None:
    for task_id in task_ids:
        task = load(task_id)
        if task is not None and lifecycle.task_requeue(task, reason="worker_stopped"):
            cancel_watch().interrupt(task_id)  # its thread stops at the next token
