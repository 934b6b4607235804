"""One error factory for the Anthropic door, JSON and SSE alike:
`{"type": "error", "error": {"type": ..., "message": ...}}` with the status that type has."""

import json

from django.http import JsonResponse

from sop_llm.auth import api_key_required
from sop_llm.errors import ServiceError

# HTTP status -> Anthropic's error type (its own table; 503 is our "try again shortly")
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict:
    return {"type": "error", "error": {"type": TYPES.get(status, "api_error"), "message": message}}


def anthropic_error(status: int, message: str, *, task_id: str | None = None) -> JsonResponse:
    response = JsonResponse(error_body(status, message), status=status)
    if task_id:
        response["X-SOP-Task-Id"] = task_id
    return response


def sse_error(status: int, message: str) -> str:
    """The same error as a stream's `error` event."""
    return sse("error", error_body(status, message))


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def with_field(message: str, field: str | None) -> str:
    """Anthropic's messages name the field in their text (`messages.0.content: ...`)."""
    return f"{field}: {message}" if field else message


def anthropic_error_from(error: ServiceError) -> JsonResponse:
    response = anthropic_error(error.status, with_field(error.message, error.field))
    for name, value in error.headers.items():
        response[name] = value
    return response


anthropic_key_required = api_key_required(scope="tasks", respond=anthropic_error_from)
