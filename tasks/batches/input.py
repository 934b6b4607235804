"""A batch's input file, read line by line: validated as a whole (a batch with any bad line
enqueues nothing), and the custom_ids of lines that will never run."""

import json

from django.conf import settings

from sop_llm.core import jsonparse, keys
from sop_llm.core.redis import get_rq_redis
from tasks.anthropic_api import batch_lines as messages
from tasks.batches.lines import line_task_id
from tasks.batches.records import Batch
from tasks.batches.validate import Line, LineError, line_parse

MAX_ERRORS = 100  # listed on the batch; the count of the rest is said in one more entry
# Lines validated by this process, kept for its enqueue step (a resumed runner re-parses).
_PARSED: dict[str, list[Line]] = {}


def input_lines(batch: Batch) -> list[bytes]:
    content = get_rq_redis().get(keys.file_content(batch.input_file_id)) or b""
    lines = content.split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


def parse_all(batch: Batch) -> tuple[list[Line], list[dict]]:
    raw = input_lines(batch)
    if not raw:
        return [], [_error("empty_file", "the input file is gone (deleted or expired) or empty")]
    if len(raw) > settings.BATCH_MAX_LINES:
        message = f"the file has {len(raw)} lines; the limit is {settings.BATCH_MAX_LINES}"
        return [], [_error("too_many_lines", message)]
    lines, errors, seen = [], [], set()
    for number, text in enumerate(raw, start=1):
        try:
            line = line_parse(text, number=number, endpoint=batch.endpoint)
            if line.custom_id in seen:
                raise LineError(
                    "duplicate_custom_id", f"custom_id {line.custom_id!r} is repeated", "custom_id"
                )
        except LineError as exc:
            errors.append(exc.as_error(number))
            continue
        seen.add(line.custom_id)
        lines.append(line)
    if errors:
        return [], _capped(errors)
    _PARSED[batch.id] = lines
    return lines, []


def parsed_lines(batch: Batch) -> list[Line]:
    """The validated lines: this process's own from validation, or parsed again (a resume)."""
    if batch.id not in _PARSED:
        lines, errors = parse_all(batch)
        if errors:  # the file changed under the batch: nothing more is enqueued
            raise LineError("invalid_file", "the input file no longer validates")
    return _PARSED[batch.id]


def parsed_forget(batch_id: str) -> None:
    _PARSED.pop(batch_id, None)


def _error(code: str, message: str, line: int | None = None) -> dict:
    return {"code": code, "message": message, "param": None, "line": line}


def _capped(errors: list[dict]) -> list[dict]:
    if len(errors) <= MAX_ERRORS:
        return errors
    more = len(errors) - MAX_ERRORS
    return [*errors[:MAX_ERRORS], _error("too_many_errors", f"{more} more lines have errors")]


def skipped_lines(batch: Batch, raw: list[bytes], start: int, end: int, *, code: str) -> str:
    """Error lines for lines start+1..end, which will never run."""
    message = {
        "batch_cancelled": "The batch was cancelled before this request was run.",
        "batch_expired": "This request could not be executed before the completion window expired.",
    }[code]
    out = []
    for number in range(start + 1, end + 1):
        custom_id = _custom_id(raw[number - 1]) if number <= len(raw) else None
        line = {
            "id": f"batch_req_{line_task_id(batch.id, number)}",
            "custom_id": custom_id,
            "response": None,
            "error": {"code": code, "message": message},
        }
        if batch.endpoint == messages.ENDPOINT:  # an Anthropic Message Batch
            line = {"custom_id": custom_id, "result": messages.skipped_result(code)}
        out.append(json.dumps(line, separators=(",", ":"), ensure_ascii=False))
    return "\n".join(out) + "\n" if out else ""


def _custom_id(raw: bytes) -> str | None:
    try:
        item = jsonparse.loads(raw)
    except (jsonparse.BadJSON, UnicodeDecodeError):
        return None
    return item.get("custom_id") if isinstance(item, dict) else None
