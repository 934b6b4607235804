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
    deadline = time.monotonic() + settings.TASK_MAX_TIMEOUT_SECONDS
    finished: list[str] = []
    running: dict[Future, str] = {}
    held: Task | None = None  # claimed, for another model: runs once the batch drains
    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="slot")
    try:
        while True:
            admitting = not worker_identity.stopping() and time.monotonic() < deadline
            while admitting and held is None and len(running) < slots:
                task = task_claim_next(lane=lane, preferred_model=preferred_model_key())
                if task is None:
                    break
                if running and task.model_key != preferred_model_key():
                    held = task
                else:
                    running[pool.submit(task_run_claimed, task)] = task.task_id
            if held is not None and not running:
                running[pool.submit(task_run_claimed, held)], held = held.task_id, None
            if not running:
                return finished
            done, _ = wait(running, timeout=ADMIT_EVERY_SECONDS, return_when=FIRST_COMPLETED)
            finished += [_collect(future, running) for future in done]
    except BaseException:  # a cold stop or the job's timeout: hand every slot's task back
        _requeue_all(running, held)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _requeue_all(running: dict[Future, str], held: Task | None) -> None:
    for task_id in [*running.values(), *([held.task_id] if held else [])]:
        task = load(task_id)
        if task is not None and lifecycle.task_requeue(task, reason="worker_stopped"):
            cancel_watch().interrupt(task_id)  # its thread stops at the next token


def _collect(future: Future, running: dict[Future, str]) -> str:
    task_id = running.pop(future)
    future.exception()  # the task is final either way; its error is in its report and logs
    return task_id
