"""A failed task's error code -> the HTTP status its request answers with, on every door (the
OpenAI and Anthropic routes, their batch lines): the one table.

A deterministic outcome is never a retryable status: the SDKs retry 408, 409, 429 and every 5xx
(twice, by default), which would run the same refused work on the GPU three times. So what the
request itself caused (a prompt too long, an answer the schema refuses, a grammar the engine
cannot run) is a 4xx; a 5xx is left for what another try may cure (a remote outage, VRAM).
"""

FAILURE_STATUS = {
    "context_length": 400,
    "bad_request": 400,
    "grammar_error": 400,
    "not_found": 404,
    "invalid_output": 422,
    "truncated": 422,  # /v1 takes the text so far (finish_reason length) instead
    "cancelled": 499,
    "insufficient_vram": 503,
}
OTHERWISE = 502  # a provider's outage or error: another try may succeed


def failure_http_status(code: str | None) -> int:
    return FAILURE_STATUS.get(code or "", OTHERWISE)
