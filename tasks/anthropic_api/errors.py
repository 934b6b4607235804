"""One error factory for the Anthropic door, JSON and SSE alike:
`{"type": "error", "error": {"type": ..., "message": ...}}` with the status that type has
(sop_llm.core.errors holds the table, for the answers given before a view runs: 404, 413, 500)."""

import json
from functools import partial

from django.http import JsonResponse

from sop_llm.access.auth import api_key_required
from sop_llm.core.errors import ServiceError
from sop_llm.core.errors import anthropic_error_body as error_body
from sop_llm.core.methods import require_methods


def _method_refused(request, allowed: str) -> JsonResponse:
    return anthropic_error(405, f"Use {allowed}.")


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


anthropic_methods = partial(require_methods, refuse=_method_refused)
