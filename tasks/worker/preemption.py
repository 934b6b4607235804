"""Preemption by priority: a queued task PREEMPT_PRIORITY_GAP levels above the lowest running
slot's takes that slot when none is free (tasks.worker.slots decides; this module holds the choice
and the per-process flags the decode loop reads).

The victim's sequence stops at the next decode step boundary (Sequence.interruption, the
cancel path), its progress is checkpointed and it goes back to the queue at its old score
(lifecycle.task_preempt), so it runs before any later task of its priority and resumes where
it stopped. A task is preempted at most MAX_PREEMPTIONS times: then it keeps its slot.
"""

import threading
from dataclasses import dataclass

from django.conf import settings

from tasks.store import Task


@dataclass(frozen=True)
class Preemption:
    by: str  # the task that takes the slot
    at: float


class _Flags:
    """task id -> who asked for its slot; read per decode step, so a dict lookup."""

    def __init__(self) -> None:
        self._asked: dict[str, Preemption] = {}
        self._lock = threading.Lock()

    def ask(self, task_id: str, preemption: Preemption) -> None:
        with self._lock:
            self._asked[task_id] = preemption

    def check(self, task_id: str):
        """A cheap callable for GenerateRequest.is_preempted."""
        return lambda: task_id in self._asked

    def asked(self, task_id: str) -> Preemption | None:
        return self._asked.get(task_id)

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._asked.pop(task_id, None)


_flags = _Flags()


def preemption_flags() -> _Flags:
    return _flags


def victim_for(running: list[Task], priority: int) -> Task | None:
    """The running task a queued task of `priority` may take the slot of: the lowest priority
    at least the gap below, not yet preempted MAX_PREEMPTIONS times, the latest started first
    (it has the least to redo); None when preemption is off or nothing qualifies."""
    gap = settings.PREEMPT_PRIORITY_GAP
    if not gap:
        return None
    fair = [
        t
        for t in running
        if t.priority + gap <= priority
        and t.preemptions < settings.MAX_PREEMPTIONS
        and _flags.asked(t.task_id) is None
    ]
    return min(fair, key=lambda t: (t.priority, -(t.started_at or 0)), default=None)
