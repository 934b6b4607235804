"""One input line -> the task it becomes, or an error in OpenAI's shape naming the line.

A line goes through the same checks as a POST to the endpoint it names (the front door's
request serializer, its translation, the task serializer), so a batch line and a plain
request are refused for the same reasons with the same messages."""

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.serializers import Serializer

from sop_llm.core import jsonparse
from sop_llm.core.errors import _first_error
from tasks.anthropic_api import batch_lines as messages
from tasks.anthropic_api.blocks import RequestError
from tasks.anthropic_api.protocol import messages_request
from tasks.anthropic_api.translate import anthropic_field
from tasks.anthropic_api.translate import task_data as messages_task_data
from tasks.openai.protocol.requests import ChatRequest, CompletionRequest, openai_param
from tasks.openai.serving.translate import task_data
from tasks.serializers import TaskCreateSerializer
from tasks.targets import UnknownModel

LINE_KEYS = ("custom_id", "method", "url", "body")
CUSTOM_ID_MAX = 512
# Fields of a plain request that mean nothing on a batch line: refused, never ignored.
NOT_ON_A_LINE = ("stream", "stream_options", "idempotency_key", "deadline_seconds")


@dataclass
class Line:
    number: int  # 1-based, as an editor shows it
    custom_id: str
    data: dict  # the validated native task body
    model: str  # as the line named it, for the output line


class LineError(ValueError):
    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code, self.message, self.param = code, message, param

    def as_error(self, line: int) -> dict:
        return {"code": self.code, "message": self.message, "param": self.param, "line": line}


def line_parse(raw: bytes, *, number: int, endpoint: str) -> Line:
    """Raises LineError."""
    if len(raw) > settings.MAX_REQUEST_BODY_BYTES:
        raise LineError(
            "request_too_large",
            f"the line is {len(raw)} bytes; a request may be at most "
            f"{settings.MAX_REQUEST_BODY_BYTES} (MAX_REQUEST_BODY_BYTES)",
        )
    item = _json_object(raw)
    custom_id = _custom_id(item)
    if item.get("method") != "POST":
        raise LineError("invalid_method", "method must be POST", "method")
    if item.get("url") != endpoint:
        raise LineError(
            "invalid_url",
            f"url must be the batch's endpoint {endpoint!r}, not {item.get('url')!r}",
            "url",
        )
    if endpoint == messages.ENDPOINT:
        body = _messages_body(item.get("body"))
    else:
        body = _task_body(item.get("body"), chat=endpoint == "/v1/chat/completions")
    return Line(number, custom_id, body, item["body"]["model"])


def _json_object(raw: bytes) -> dict:
    try:
        item = jsonparse.loads(raw)
    except (jsonparse.BadJSON, UnicodeDecodeError) as exc:
        raise LineError("invalid_json_line", f"the line is not valid JSON: {exc}") from None
    if not isinstance(item, dict):
        raise LineError("invalid_json_line", "the line is not a JSON object")
    unknown = sorted(set(item) - set(LINE_KEYS))
    if unknown:
        raise LineError("invalid_request", f"unknown field {unknown[0]!r}", unknown[0])
    return item


def _custom_id(item: dict) -> str:
    value = item.get("custom_id")
    if not isinstance(value, str) or not value or len(value) > CUSTOM_ID_MAX:
        raise LineError(
            "invalid_custom_id",
            f"custom_id must be a string of 1 to {CUSTOM_ID_MAX} characters",
            "custom_id",
        )
    return value


@cache
def _checkers(chat: bool) -> tuple[Serializer, Serializer]:
    """The front door's request serializer and the task serializer, built once: they keep no
    state between validations, and building their fields was most of the cost of a line
    (7.7 -> 3.1 ms per line, measured here on a loaded 2-core machine)."""
    return (ChatRequest if chat else CompletionRequest)(), TaskCreateSerializer()


def _line_body(body) -> dict:
    if not isinstance(body, dict):
        raise LineError("invalid_request", "body must be a JSON object", "body")
    for name in NOT_ON_A_LINE:
        if name in body:
            raise LineError(
                "invalid_request", f"{name} has no meaning in a batch line", f"body.{name}"
            )
    return body


def _task_body(body, *, chat: bool) -> dict:
    body = _line_body(body)
    request_checker, task_checker = _checkers(chat)
    try:
        request = request_checker.run_validation(body)
        data = task_data({k: v for k, v in request.items() if v is not None}, chat=chat)
        validated = task_checker.run_validation(data)
    except UnknownModel as exc:
        raise LineError("model_not_found", str(exc), f"body.{exc.param}") from None
    except ValidationError as exc:
        field, message = _first_error(exc.detail)
        param = openai_param(field, body)
        raise LineError("invalid_request", message, f"body.{param}" if param else "body") from None
    return _batch_priority(dict(validated), body)


def _batch_priority(data: dict, body: dict) -> dict:
    if "priority" not in body:  # batch work waits behind interactive work unless told
        data["priority"] = settings.BATCH_PRIORITY
    return data


def _messages_body(body) -> dict:
    """An Anthropic Message Batch request's `params`, checked as a POST to /v1/messages is."""
    body = _line_body(body)
    try:
        data = messages_task_data(messages_request(body))
        validated = _checkers(True)[1].run_validation(data)
    except RequestError as exc:
        param = f"body.{exc.field}" if exc.field else "body"
        raise LineError("invalid_request", exc.message, param) from None
    except UnknownModel as exc:
        raise LineError("model_not_found", str(exc), "body.model") from None
    except ValidationError as exc:
        field, message = _first_error(exc.detail)
        param = anthropic_field(field)
        raise LineError("invalid_request", message, f"body.{param}" if param else "body") from None
    return _batch_priority(dict(validated), body)
