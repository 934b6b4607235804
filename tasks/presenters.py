"""What the API shows of a stored task: the task view and the detailed report."""

import datetime as dt
from typing import Any

from sop_llm.core.redact import redact
from tasks.result import TaskResult
from tasks.status import TaskStatus
from tasks.store import Task

TIMESTAMPS = (
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
    "failed_at",
    "cancelled_at",
    "deadline_at",
)


def iso(value: Any) -> str | None:
    if value in (None, ""):
        return None
    stamp = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_public(task: Task) -> dict:
    result = TaskResult.from_record(task.result)
    view = {
        "task_id": task.task_id,
        "status": task.status,
        "lane": task.lane,
        "provider": (result and result.provider) or task.provider,
        "model": (result and result.model) or task.model,
        "requested": {"provider": task.provider, "model": task.model},
        "priority": task.priority,
        "result": result.public() if result else None,
        "usage": task.usage,
        "error": redact(task.error),
        "metadata": task.metadata,
        "webhook": _webhook_view(task),
        **{name: iso(getattr(task, name)) for name in TIMESTAMPS},
        "finished_at": iso(task.finished_at),
    }
    if task.cancel_requested and task.status == TaskStatus.PROCESSING:
        view["cancel_requested"] = True
    return view


def _webhook_view(task: Task) -> dict | None:
    if not task.webhook_url:
        return None
    state = task.webhook or {}
    return {
        "url": task.webhook_url,
        "state": state.get("state", "pending"),
        "attempts": len(state.get("attempts", [])),
    }


def task_report_view(task: Task, timeline: list[dict], logs: list[dict]) -> dict:
    for entry in timeline:
        entry["at"] = iso(entry["at"])
    # Everything that can carry a remote's words or a caller's URL goes through redact.
    return {
        **task_public(task),
        "request": redact(task.request),
        "attempts": redact(task.attempts or []),
        "charged": task.charged,
        "timings": task.timings or {},
        "reproducibility": task.repro,
        "timeline": redact(timeline),
        "webhook_deliveries": redact((task.webhook or {}).get("attempts", [])),
        "crash_count": task.crash_count,
        "preemptions": task.preemptions,  # the timeline's `preempted` entries say by whom
        "worker": task.worker or None,
        "logs": redact(logs),
    }
