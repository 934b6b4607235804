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

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import redis
from django.conf import settings
from rq.exceptions import NoSuchJobError
from rq.job import Job

from models_gpu.guard import loaded_params, preferred_model_key
from models_gpu.provider import load_params_of
from sop_llm.core.lanes import rq_queue
from tasks import lifecycle, queue
from tasks.queue import PROCESS_NEXT_JOB, SLOT_ADMIT_SECONDS
from tasks.status import TaskStatus
from tasks.store import Task, load
from tasks.worker import identity
from tasks.worker.bell import lane_bell
from tasks.worker.cancel import cancel_watch
from tasks.worker.preemption import Preemption, preemption_flags, victim_for
from tasks.worker.processor import task_claim_batch, task_claim_next, task_run_claimed

log = logging.getLogger(__name__)
# New tasks ring the lane's bell; this poll only covers a ring missed during a reconnect.
ADMIT_POLL_SECONDS = 1.0
CONTROL_CHECK_SECONDS = 1.0


def task_process_slots(*, lane: str, slots: int) -> list[str]:
    """Run the lane's tasks `slots` at a time until none is left -> the ids it finished."""
    scheduler = _Scheduler(lane, slots)
    lane_bell(lane).attach(scheduler.wake)
    try:
        return scheduler.run()
    except BaseException:  # a cold stop or the job's timeout: hand every slot's task back
        _requeue_all(scheduler.in_flight())
        raise
    finally:
        lane_bell(lane).detach(scheduler.wake)
        scheduler.pool.shutdown(wait=False, cancel_futures=True)


class _Scheduler:
    def __init__(self, lane: str, slots: int):
        self.lane, self.slots = lane, slots
        self.deadline = time.monotonic() + SLOT_ADMIT_SECONDS
        # One thread more than slots: a preempting task starts while its victim winds down.
        self.pool = ThreadPoolExecutor(max_workers=slots + 1, thread_name_prefix="slot")
        self.running: dict[Future, Task] = {}
        self.model = ""  # of the tasks running now: one model at a time (it may be loading)
        self.params = None  # what that model is (or will be) loaded with, None: unknown
        # Claimed, but they need another model or load: they run, in claim order, once the
        # batch drains (a batch claim may bring one and, rarely, more after it).
        self.held: list[Task] = []
        self.finished: list[str] = []
        self.gpu = str(settings.GPU_ID)
        self.wake = threading.Event()  # a slot finished or a task was queued
        self._control_checked, self._control_waiting = 0.0, False

    def run(self) -> list[str]:
        while True:
            self._admit()
            self._preempt()
            if self.held and not self.running:
                self._start_held()
            if not self.running:
                return self.finished
            self.wake.wait(timeout=ADMIT_POLL_SECONDS)
            self.wake.clear()  # before looking: a later ring or finish sets it again
            done = [future for future in self.running if future.done()]
            self.finished += [_collect(future, self.running) for future in done]

    def _admit(self) -> None:
        try:
            while self._admitting() and not self.held and len(self.running) < self.slots:
                free = self.slots - len(self.running)
                tasks = task_claim_batch(
                    lane=self.lane,
                    limit=free,
                    preferred_model=self.model or preferred_model_key(),
                    gpu_id=self.gpu,
                )
                for task in tasks:
                    if self.held or (self.running and not self._joins(task)):
                        self.held.append(task)
                    else:
                        self._start(task)
                if not tasks:
                    return
        except redis.RedisError as exc:  # a blip: the running slots go on; retry next tick
            log.warning("slot scheduler could not claim: %s", exc)

    def _preempt(self) -> None:
        """Every slot busy and a task queued PREEMPT_PRIORITY_GAP above the lowest running
        one: claim it, ask that slot's task to stop at the next decode step (it is
        checkpointed and requeued at its old place), and start the new one at once: the
        decode loop admits it into the slot the victim leaves."""
        if len(self.running) != self.slots or self.held or not self._admitting():
            return
        try:
            priority = queue.head_priority(self.lane)
            victim = None if priority is None else victim_for(self._tasks(), priority)
            if victim is None:
                return
            task = task_claim_next(lane=self.lane, preferred_model=self.model, gpu_id=self.gpu)
        except redis.RedisError as exc:
            log.warning("slot scheduler could not preempt: %s", exc)
            return
        if task is None:
            return
        if not self._joins(task):  # another model: it waits for the batch to drain
            self.held.append(task)
            return
        if task.priority >= victim.priority + settings.PREEMPT_PRIORITY_GAP:
            preemption_flags().ask(victim.task_id, Preemption(by=task.task_id, at=time.time()))
        self._start(task)  # a task that raced past the urgent one waits in the engine's queue

    def _tasks(self) -> list[Task]:
        return list(self.running.values())

    def _admitting(self) -> bool:
        if identity.stopping() or time.monotonic() >= self.deadline:
            return False
        return not self._control_job_waiting()

    def _control_job_waiting(self) -> bool:
        """A model load/unload queued at the front: let the batch drain so it runs next."""
        if time.monotonic() - self._control_checked >= CONTROL_CHECK_SECONDS:
            self._control_checked = time.monotonic()
            queue = rq_queue(self.lane)
            head = queue.get_job_ids(0, 1)
            try:
                job = Job.fetch(head[0], connection=queue.connection) if head else None
            except NoSuchJobError:  # another worker took it between the two reads
                job = None  # (raised, it ended the scheduler and requeued every running slot)
            self._control_waiting = job is not None and job.func_name != PROCESS_NEXT_JOB
        return self._control_waiting

    def _start_held(self) -> None:
        """The batch has drained: the held tasks start in claim order, as many as can run
        together. Each may have been cancelled or recovered meanwhile: it starts only if it
        is still this claim's."""
        while self.held and (not self.running or self._joins(self.held[0])):
            held = self.held.pop(0)
            fresh = load(held.task_id)
            if (
                fresh is not None
                and fresh.status == TaskStatus.PROCESSING
                and fresh.run == held.run
            ):
                self._start(fresh)
            else:
                identity.running_remove(held.task_id)

    def _joins(self, task: Task) -> bool:
        """Can `task` run beside the running ones, on the model as loaded for them? One that
        needs a reload (another model, a larger n_ctx) waits for the batch to drain instead,
        and nothing claimed after it jumps ahead meanwhile."""
        if task.model_key != self.model:
            return False
        wanted = load_params_of(task.model_key, task.request.get("options"))
        return wanted is None or self.params is None or self.params.covers(wanted)

    def _start(self, task: Task) -> None:
        if not self.running:  # the first of a batch decides the load
            wanted = load_params_of(task.model_key, task.request.get("options"))
            held = loaded_params(task.model_key)
            self.params = held if held and wanted and held.covers(wanted) else wanted
        self.model = task.model_key
        future = self.pool.submit(task_run_claimed, task)
        self.running[future] = task
        future.add_done_callback(lambda _: self.wake.set())

    def in_flight(self) -> list[Task]:
        return [*self.running.values(), *self.held]


def _collect(future: Future, running: dict[Future, Task]) -> str:
    task = running.pop(future)
    future.exception()  # the task is final either way; its error is in its report and logs
    return task.task_id


def _requeue_all(tasks: list[Task]) -> None:
    """Back to the queue, each as this scheduler claimed it: the run guard refuses any that
    recovery already handed to another worker."""
    for task in tasks:
        if lifecycle.task_requeue(task, reason="worker_stopped"):
            cancel_watch().interrupt(task.task_id)  # its thread stops at the next token
