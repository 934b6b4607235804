"""What the API shows of a stored task: the task view and the detailed report."""

import datetime as dt
from typing import Any

from sop_llm.redact import redact

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


def _finished_at(task: dict) -> str | None:
    for name in ("completed_at", "failed_at", "cancelled_at", "finished_at"):
        if task.get(name):
            return iso(task[name])
    return None


def task_public(task: dict) -> dict:
    result = task.get("result")
    used_provider = (result or {}).get("provider") or task["provider"]
    used_model = (result or {}).get("model") or task["model"]
    view = {
        "task_id": task["task_id"],
        "status": task["status"],
        "lane": task["lane"],
        "provider": used_provider,
        "model": used_model,
        "requested": {"provider": task["provider"], "model": task["model"]},
        "priority": int(task["priority"]),
        "result": _result_view(result),
        "usage": task.get("usage"),
        "error": redact(task.get("error")),
        "metadata": task.get("metadata"),
        "webhook": _webhook_view(task),
        **{name: iso(task.get(name)) for name in TIMESTAMPS},
        "finished_at": _finished_at(task),
    }
    if task.get("cancel_requested") and task["status"] == "processing":
        view["cancel_requested"] = True
    return view


def _result_view(result: dict | None) -> dict | None:
    if not result:
        return None
    keep = ("text", "parsed", "finish_reason", "enforcement", "validation")
    return {name: result.get(name) for name in keep if name in result}


def _webhook_view(task: dict) -> dict | None:
    if not task.get("webhook_url"):
        return None
    state = task.get("webhook") or {}
    return {
        "url": task["webhook_url"],
        "state": state.get("state", "pending"),
        "attempts": len(state.get("attempts", [])),
    }


def task_report_view(task: dict, timeline: list[dict], logs: list[dict]) -> dict:
    for entry in timeline:
        entry["at"] = iso(entry["at"])
    # Everything that can carry a remote's words or a caller's URL goes through redact.
    return {
        **task_public(task),
        "request": redact(task.get("request")),
        "attempts": redact(task.get("attempts") or []),
        "timings": task.get("timings") or {},
        "reproducibility": task.get("repro"),
        "timeline": redact(timeline),
        "webhook_deliveries": redact((task.get("webhook") or {}).get("attempts", [])),
        "crash_count": int(task.get("crash_count") or 0),
        "worker": task.get("worker") or None,
        "logs": redact(logs),
    }
