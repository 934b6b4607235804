"""A failed task's HTTP status (tasks/failures.py, the one table) and OpenAI error type, for a
plain POST and a batch line alike."""

from tasks.failures import failure_http_status

INVALID = "invalid_request_error"
# The type goes with the status: a 4xx is the request's fault, a 5xx the server's or a remote's.
TYPES = {499: "cancelled", 502: "api_error", 503: "server_error"}


def failure_status(code: str | None) -> tuple[int, str]:
    status = failure_http_status(code)
    return status, TYPES.get(status, INVALID)
