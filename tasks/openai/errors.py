"""One error factory for every /v1 view in OpenAI's shape (chat, completions, models, the
Responses API, Files and Batches): `{"error": {"message", "type", "param", "code"}}`, as a JSON
response or as a stream's error event. The policy's refusals (key, scope, rate, method) come out
of it too, through the decorators below."""

import logging
from functools import partial

import redis
from django.http import JsonResponse
from rest_framework.exceptions import ValidationError

from sop_llm.access.auth import api_key_required
from sop_llm.access.principals import ANY_KEY
from sop_llm.core.errors import ServiceError, _first_error, redis_unavailable
from sop_llm.core.methods import require_methods
from tasks.failures import failure_http_status
from tasks.openai.protocol.requests import openai_param
from tasks.openai.protocol.sse import sse
from tasks.targets import UnknownModel

log = logging.getLogger(__name__)
INVALID = "invalid_request_error"
# A failed task's type goes with its status: a 4xx is the request's fault, a 5xx the server's
# or a remote's.
FAILURE_TYPES = {499: "cancelled", 502: "api_error", 503: "server_error"}
REDIS_LOST = (
    "Redis stopped answering while this request waited; task {id} goes on: fetch its result "
    "with GET /api/v1/tasks/{id} once Redis is back (sending the request again would run it "
    "again)"
)
# ServiceError code -> (OpenAI error type, OpenAI code, message) for the policy's refusals
POLICY_ERRORS = {
    "unauthorized": ("invalid_request_error", "invalid_api_key", None),
    "missing_scope": ("permission_error", "missing_scope", None),
    "rate_limited": ("rate_limit_error", "rate_limit_exceeded", None),
    "redis_unavailable": ("server_error", "redis_unavailable", None),
}


def error_body(message: str, *, type_: str = INVALID, param=None, code=None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = INVALID,
    param: str | None = None,
    code: str | None = None,
    task_id=None,
) -> JsonResponse:
    response = JsonResponse(error_body(message, type_=type_, param=param, code=code), status=status)
    if task_id:
        response["X-SOP-Task-Id"] = task_id
    return response


def sse_error(message: str, *, type_: str, code: str | None) -> str:
    """The same error as a stream's event (the caller ends the stream after it)."""
    return sse(error_body(message, type_=type_, code=code))


def openai_error_from(error: ServiceError) -> JsonResponse:
    """Our ServiceError in OpenAI's shape."""
    fallback = "rate_limit_error" if error.status == 429 else INVALID
    type_, code, message = POLICY_ERRORS.get(error.code, (fallback, error.code, None))
    response = openai_error(
        error.status, message or error.message, type_=type_, param=error.field, code=code
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


def failure_status(code: str | None) -> tuple[int, str]:
    """A failed task's HTTP status (tasks/failures.py, the one table) and OpenAI error type,
    for a plain POST and a batch line alike."""
    status = failure_http_status(code)
    return status, FAILURE_TYPES.get(status, INVALID)


def create_error(exc: Exception, body: dict, *, param_name=lambda field: field, what="OpenAI"):
    """One error answer for every way creating a task can fail; `param_name` renames a field
    path for a door whose names differ (the Responses API's)."""
    if isinstance(exc, UnknownModel):
        param = param_name(exc.param)
        return openai_error(404, str(exc), code="model_not_found", param=param)
    if isinstance(exc, ValidationError):
        field, message = _first_error(exc.detail)  # the field goes in `param`, not the message
        param = param_name(openai_param(field, body))
        return openai_error(400, message, param=param, code="invalid_value")
    if isinstance(exc, ServiceError):
        return openai_error_from(exc)
    if isinstance(exc, redis.RedisError):
        return openai_error(
            503,
            "Redis is unavailable; try again shortly",
            type_="server_error",
            code="redis_unavailable",
        )
    log.exception("%s request failed", what)
    return openai_error(500, "internal error", type_="server_error", code="internal")


def answering(view):
    """The error translation of the Files and Batch views: ServiceError, a 400 naming the
    field, Redis down."""

    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ServiceError as exc:
            return openai_error_from(exc)
        except ValidationError as exc:
            field, message = _first_error(exc.detail)
            return openai_error(400, message, param=field, code="invalid_value")
        except (redis.ConnectionError, redis.TimeoutError):
            return openai_error_from(redis_unavailable())

    return wrapper


def _method_refused(request, allowed: str) -> JsonResponse:
    return openai_error(405, f"Use {allowed}.", code="method_not_allowed")


openai_methods = partial(require_methods, refuse=_method_refused)  # the 405 in OpenAI's shape
openai_key_required = api_key_required(scope="tasks", respond=openai_error_from)
# The catalog is for any valid key, whatever its scopes (as /api/v1/models).
openai_any_key = api_key_required(scope=ANY_KEY, respond=openai_error_from)
