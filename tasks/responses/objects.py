"""Tasks as OpenAI `response` objects: status, output items, usage, error."""

from tasks import store
from tasks.result import TaskResult

STATUS = {
    "queued": "queued",
    "processing": "in_progress",
    "failed": "failed",
    "cancelled": "cancelled",
}


def response_id(task_id: str) -> str:
    return f"resp_{task_id}"


def task_id_of(response_id: str) -> str | None:
    """`resp_<task id>` -> the task id (None for anything else: a 404)."""
    task_id = response_id.removeprefix("resp_")
    ok = response_id.startswith("resp_") and len(task_id) == 32 and task_id.isalnum()
    return task_id if ok else None


def status_of(task: store.Task) -> str:
    if task.status != "completed":
        return STATUS[task.status]
    return "incomplete" if _truncated(task) else "completed"


def _truncated(task: store.Task) -> bool:
    result = TaskResult.from_record(task.result)
    return result is not None and result.truncated


def message_item(task_id: str, text: str, status: str = "completed") -> dict:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": f"msg_{task_id}",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [part],
    }


def call_item(task_id: str, index: int, call: dict, status: str = "completed") -> dict:
    function = call.get("function") or {}
    return {
        "id": f"fc_{task_id}_{index}",
        "type": "function_call",
        "status": status,
        "call_id": call.get("id") or f"call_{task_id}_{index}",
        "name": function.get("name", ""),
        "arguments": function.get("arguments", ""),
    }


def output_items(task: store.Task) -> list[dict]:
    """The answer as output items: its function calls, else its text (partial when cut)."""
    result = TaskResult.from_record(task.result)
    if result is None:
        return []
    if calls := result.tool_calls:
        return [call_item(task.task_id, i, c) for i, c in enumerate(calls)]
    status = "completed" if status_of(task) == "completed" else "incomplete"
    return [message_item(task.task_id, result.text, status)]


def usage_of(task: store.Task) -> dict | None:
    if not task.usage:
        return None
    given = task.usage.get("prompt_tokens") or 0  # null when cancelled before its prefill
    got = task.usage.get("completion_tokens") or 0
    return {
        "input_tokens": given,
        "input_tokens_details": {"cached_tokens": task.usage.get("cached_prompt_tokens") or 0},
        "output_tokens": got,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": given + got,
    }


def _error(task: store.Task) -> dict | None:
    if task.status not in ("failed", "cancelled") or not task.error:
        return None
    return {
        "code": task.error.get("code") or "server_error",
        "message": task.error.get("message", ""),
    }


def response_object(task: store.Task, record: dict) -> dict:
    status = status_of(task)
    return {
        "id": response_id(task.task_id),
        "object": "response",
        "created_at": int(task.created_at or 0),
        "status": status,
        "completed_at": int(task.finished_at)
        if task.finished_at and status == "completed"
        else None,
        "error": _error(task),
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "output": output_items(task),
        "usage": usage_of(task),
        "parallel_tool_calls": record.get("parallel_tool_calls", True),
        "tool_choice": record.get("tool_choice", "auto"),
        "tools": record.get("tools", []),
        "text": record.get("text") or {"format": {"type": "text"}},
        "metadata": record.get("metadata") or {},
        "background": record.get("background", False),
        "store": record.get("store", True),
        **{
            k: record.get(k)
            for k in ("model", "instructions", "max_output_tokens", "temperature", "top_p")
        },
        **{k: record.get(k) for k in ("previous_response_id", "user", "safety_identifier")},
    }
