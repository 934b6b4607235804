"""One error type, one JSON shape: {"error": {"code", "message", "field"}} everywhere."""

import logging

import redis
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error a client should see: HTTP status, a stable code, a message, maybe a field."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "bad_request",
        status: int = 400,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field
        self.headers = headers or {}


class NotFound(ServiceError):
    def __init__(self, message: str):
        super().__init__(message, code="not_found", status=404)


class Conflict(ServiceError):
    def __init__(self, message: str, *, code: str = "conflict"):
        super().__init__(message, code=code, status=409)


def error_body(code: str, message: str, field: str | None = None, **extra) -> dict:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def redis_unavailable() -> ServiceError:
    return ServiceError(
        "Redis is unavailable; try again shortly",
        code="redis_unavailable",
        status=503,
        headers={"Retry-After": "1"},
    )


def too_many(wait: float | None, *, limit: str = "RATE_LIMIT_PER_MINUTE") -> ServiceError:
    seconds = int(wait or 1) + 1
    return ServiceError(
        f"rate limit exceeded ({limit}); retry in {seconds}s",
        code="rate_limited",
        status=429,
        headers={"Retry-After": str(seconds)},
    )


def _first_error(detail, path: str = "") -> tuple[str | None, str]:
    """DRF's nested error detail -> (dotted field path, message) of the first error."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = key if not path else f"{path}.{key}"
            if key == "non_field_errors":
                sub = path
            return _first_error(value, sub)
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if value:
                nested = isinstance(value, dict | list)
                return _first_error(value, f"{path}.{index}" if nested and path else path)
    return (path or None), str(detail)


def _from_drf(exc: drf.APIException) -> ServiceError:
    if isinstance(exc, drf.ValidationError):
        field, message = _first_error(exc.detail)  # the field travels apart, not in the text
        return ServiceError(message, code="invalid", status=400, field=field)
    if isinstance(exc, drf.ParseError):
        return ServiceError(str(exc.detail), code="invalid_json", status=400)
    if isinstance(exc, drf.Throttled):
        return too_many(exc.wait)
    codes = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        406: "not_acceptable",
        415: "unsupported_media_type",
        429: "rate_limited",
    }
    status = exc.status_code
    status = 401 if status == 403 and isinstance(exc, drf.NotAuthenticated) else status
    return ServiceError(str(exc.detail), code=codes.get(status, "error"), status=status)


def to_service_error(exc: Exception) -> ServiceError | None:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return redis_unavailable()
    if isinstance(exc, Http404):
        return NotFound("not found")
    if isinstance(exc, drf.APIException):
        return _from_drf(exc)
    return None


def exception_handler(exc: Exception, context) -> Response:
    error = to_service_error(exc)
    if error is None:
        log.exception("unhandled error in %s", context.get("view").__class__.__name__)
        error = ServiceError("internal error", code="internal", status=500)
    response = Response(error_body(error.code, error.message, error.field), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="sop-llm"'
    return response


def json_error(error: ServiceError, *, openai: bool = False) -> JsonResponse:
    """The error as JSON: ours, or OpenAI's shape for the /v1 routes."""
    body = error_body(error.code, error.message, error.field)
    if openai:
        kind = "invalid_request_error" if error.status < 500 else "server_error"
        body = {
            "error": {
                "message": error.message,
                "type": kind,
                "param": error.field,
                "code": error.code,
            }
        }
    response = JsonResponse(body, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


# HTTP status -> Anthropic's error type (the /v1/messages door; 503 is "try again shortly")
ANTHROPIC_TYPES = {
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
ANTHROPIC_PATH = "/v1/messages"


def anthropic_error_body(status: int, message: str) -> dict:
    kind = ANTHROPIC_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def json_error_for(request, error: ServiceError) -> JsonResponse:
    """For answers given before a view runs (middleware, 404, 500): the shape of the route's
    family, so an OpenAI or Anthropic client on /v1 can read every error it gets."""
    path = request.path
    if path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/"):
        message = f"{error.field}: {error.message}" if error.field else error.message
        response = JsonResponse(anthropic_error_body(error.status, message), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response
    return json_error(error, openai=path.startswith("/v1/"))


def handler404(request, exception=None) -> JsonResponse:
    return json_error_for(request, NotFound(f"no such endpoint: {request.path}"))


def handler500(request) -> JsonResponse:
    return json_error_for(request, ServiceError("internal error", code="internal", status=500))
