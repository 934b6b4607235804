"""A failed task's error code -> the HTTP status (and OpenAI error type) its /v1 request answers
with, for a plain POST and a batch line alike.

A deterministic outcome is never a retryable status: the SDKs retry 408, 409, 429 and every 5xx
(twice, by default), which would run the same refused work on the GPU three times. So what the
request itself caused (a prompt too long, an answer the schema refuses, a grammar the engine
cannot run) is a 4xx; a 5xx is left for what another try may cure (a remote outage, VRAM).
"""

INVALID = "invalid_request_error"
FAILURES = {
    "context_length": (400, INVALID),
    "bad_request": (400, INVALID),
    "grammar_error": (400, INVALID),
    "not_found": (404, INVALID),
    "invalid_output": (422, INVALID),
    "truncated": (422, INVALID),  # /v1 takes the text so far (finish_reason length) instead
    "cancelled": (499, "cancelled"),
    "insufficient_vram": (503, "server_error"),
}
OTHERWISE = (502, "api_error")  # a provider's outage or error: another try may succeed


def failure_status(code: str | None) -> tuple[int, str]:
    return FAILURES.get(code or "", OTHERWISE)
