"""The Batch API's place in a task's life: each line's output rides in its task's final step,
the batch settles after it, and the workers' recovery sweeps the batches too."""

from tasks.batches.finish import batch_settle
from tasks.batches.lines import line_effects
from tasks.batches.sweep import batches_recover
from tasks.hooks import FinishHook, finish_hook_add, recover_hook_add
from tasks.store import Task


def batch_hooks_register() -> None:
    finish_hook_add(
        FinishHook(
            name="batch",
            applies=lambda task: bool(task.batch),
            effects=line_effects,
            after=_settle,
        )
    )
    recover_hook_add("batch", batches_recover)


def _settle(task: Task) -> object:
    return batch_settle(batch_id=task.batch["id"])
