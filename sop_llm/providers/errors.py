"""One error type for every provider; `retryable` tells the fallback strategy what to do."""

from dataclasses import dataclass
from typing import Any

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass
class ProviderError(Exception):
    """`code` is stable and machine-readable; `message` names provider, model and the remote's
    words (scrubbed of secrets). `retry_after` is the remote's own hint, in seconds."""

    message: str
    code: str = "provider_error"
    retryable: bool = False
    status: int | None = None
    retry_after: float | None = None
    provider: str | None = None
    model: str | None = None
    # What the failed attempt generated before it failed (a GenerateResult: its text so far,
    # usage, timings), when known: it is charged, and a truncated task's report shows it.
    partial: Any = None

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "status": self.status,
        }


def provider_error(provider: str, model: str, message: str, **fields: Any) -> ProviderError:
    """The one factory: the message names provider and model, as every caller reads it."""
    return ProviderError(
        f"{provider} ({model}): {message}", provider=provider, model=model, **fields
    )


def missing_key(provider: str, model: str, setting: str) -> ProviderError:
    return provider_error(provider, model, f"no API key (set {setting})", code="auth")


def code_for_status(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "server_error"
    return "bad_request"


def error_for_status(
    status: int, detail: str, *, provider: str, model: str, retry_after: float | None = None
) -> ProviderError:
    code = code_for_status(status)
    if "context_length" in detail or "maximum context" in detail or "too long" in detail:
        code = "context_length"
    return ProviderError(
        f"{provider} ({model}) answered HTTP {status}: {detail}",
        code=code,
        retryable=status in RETRYABLE_STATUS and code != "context_length",
        status=status,
        retry_after=retry_after,
        provider=provider,
        model=model,
    )
