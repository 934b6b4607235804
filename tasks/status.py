"""A task's status, and which change leads to which: the one spelling of both.

    queued -> processing                       claim (the CLAIM script)
    processing -> completed | failed | cancelled
    queued -> failed (deadline) | cancelled
    processing -> queued                       its worker was lost, or is stopping

A `StrEnum`: a member is the string stored in Redis and shown by the API, so it compares equal
to what a hash or a JSON body holds.
"""

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
# To each status, the statuses a task may change to it from (enforced by the TRANSITION script).
ALLOWED_FROM = {
    TaskStatus.QUEUED: (TaskStatus.PROCESSING,),
    TaskStatus.COMPLETED: (TaskStatus.PROCESSING,),
    TaskStatus.FAILED: (TaskStatus.QUEUED, TaskStatus.PROCESSING),
    TaskStatus.CANCELLED: (TaskStatus.QUEUED, TaskStatus.PROCESSING),
}
