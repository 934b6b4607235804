"""A batch line's outcome, written in the same atomic step as its task's final status change.

`tasks.lifecycle` calls `line_effects` for every final change of a task that belongs to a
batch: the output (or error) line is APPENDed to the batch's file and the batch's counter
incremented inside the TRANSITION script, so a line is counted and written exactly once,
however often workers die around it. Only counters live in the batch: nothing per line.
"""

import json

from sop_llm.core import keys
from tasks.anthropic_api import batch_lines as messages
from tasks.openai.errors import failure_status
from tasks.openai.serving.objects import completion_object
from tasks.status import TaskStatus
from tasks.store import Effects, Task


def line_task_id(batch_id: str, number: int) -> str:
    """Derived, so a re-run of an enqueue step finds the very task it made before."""
    return f"{batch_id.removeprefix('batch_')}-{number}"


def line_effects(task: Task, status: str, fields: dict, effects: Effects) -> None:
    link = task.batch or {}
    line, expired = _line(task, status, fields)
    ok = status == TaskStatus.COMPLETED
    target = keys.file_content(link["output_file" if ok else "error_file"])
    effects.append(target, json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
    effects.expire(target, link["ttl"])
    effects.hincrby(keys.batch(link["id"]), "completed" if ok else "failed", 1)
    if expired:
        effects.hset(keys.batch(link["id"]), "expired_lines", "1")
    if "result" in line:  # Anthropic's counts by result type
        effects.hincrby(keys.batch(link["id"]), f"result_{line['result']['type']}", 1)


def _line(task: Task, status: str, fields: dict) -> tuple[dict, bool]:
    """(the output line in its API's shape, whether it expired)."""
    link = task.batch
    if link["url"] == messages.ENDPOINT:  # an Anthropic Message Batch
        result = messages.result_of(task.task_id, status, fields, model=link["model"])
        return {"custom_id": link["custom_id"], "result": result}, result["type"] == "expired"
    body, error = _outcome(task, status, fields)
    line = {
        "id": f"batch_req_{task.task_id}",
        "custom_id": link["custom_id"],
        "response": body,
        "error": error,
    }
    return line, bool(error and error["code"] == "batch_expired")


def _outcome(task: Task, status: str, fields: dict) -> tuple[dict | None, dict | None]:
    """(response, error) of the line: a response for what ran, an error for what never did."""
    if status == TaskStatus.COMPLETED:
        done = {"task_id": task.task_id, "result": fields["result"], "usage": fields.get("usage")}
        chat = task.batch["url"] == "/v1/chat/completions"
        body = completion_object(done, chat=chat, model=task.batch["model"])
        return {"status_code": 200, "request_id": task.task_id, "body": body}, None
    error = fields.get("error") or {}
    code = error.get("code")
    if status == TaskStatus.CANCELLED:
        return None, {"code": "batch_cancelled", "message": error.get("message", "cancelled")}
    if code == "deadline_exceeded":
        message = "This request could not be executed before the completion window expired."
        return None, {"code": "batch_expired", "message": message}
    status_code, kind = failure_status(code)
    body = {"error": {"message": error.get("message"), "type": kind, "param": None, "code": code}}
    return {"status_code": status_code, "request_id": task.task_id, "body": body}, None
