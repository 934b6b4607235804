"""A Message Batch's result lines, in Anthropic's shape: `{"custom_id", "result": {"type":
"succeeded", "message"} | {"type": "errored", "error"} | {"type": "canceled"} | {"type":
"expired"}}`. tasks.batches writes them in the same atomic step as the task's final change."""

from sop_llm.core.errors import anthropic_error_body as error_body
from tasks.anthropic_api.translate import message_object
from tasks.failures import failure_http_status
from tasks.status import TaskStatus

ENDPOINT = "/v1/messages"
SKIPPED = {"batch_cancelled": "canceled", "batch_expired": "expired"}


def result_of(task_id: str, status: str, fields: dict, *, model: str) -> dict:
    """The `result` of a line whose task ended with `status`."""
    if status == TaskStatus.COMPLETED:
        done = {"task_id": task_id, "result": fields["result"], "usage": fields.get("usage")}
        return {"type": "succeeded", "message": message_object(done, model=model)}
    if status == TaskStatus.CANCELLED:
        return {"type": "canceled"}
    error = fields.get("error") or {}
    if error.get("code") == "deadline_exceeded":
        return {"type": "expired"}
    status_code = failure_http_status(error.get("code"))  # as its plain request answers
    return {"type": "errored", "error": error_body(status_code, error.get("message", "failed"))}


def skipped_result(code: str) -> dict:
    """The `result` of a line that never ran (`batch_cancelled` / `batch_expired`)."""
    return {"type": SKIPPED[code]}
