"""Try the primary, retry what is worth retrying, then each fallback in order; record it all."""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from django.conf import settings

from sop_llm.core.backoff import retry_delay
from sop_llm.core.redact import scrub, secrets_in_scope
from sop_llm.providers import get_provider
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.structured import validate_result
from sop_llm.providers.types import GenerateRequest, GenerateResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    options: dict = field(default_factory=dict)


@dataclass
class Attempt:
    provider: str
    model: str
    try_number: int
    started_at: float
    duration_ms: float
    outcome: str  # "ok" | "error"
    error_code: str | None = None
    error_class: str | None = None  # "retryable" | "final"
    message: str | None = None
    # What it cost, failed or not (None: unknown, e.g. a remote that answered an error).
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    generation_ms: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class AllAttemptsFailed(Exception):
    def __init__(self, attempts: list[Attempt], last: ProviderError):
        super().__init__(last.message)
        self.attempts = attempts
        self.last = last


@dataclass
class RetryPolicy:
    max_retries: int
    backoff_seconds: float
    retry_after_cap: float
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls) -> "RetryPolicy":
        return cls(
            settings.PROVIDER_MAX_RETRIES,
            settings.PROVIDER_RETRY_BACKOFF_SECONDS,
            settings.PROVIDER_RETRY_AFTER_MAX_SECONDS,
        )

    def delay(self, error: ProviderError, retry_index: int) -> float:
        return retry_delay(
            base=self.backoff_seconds,
            retry_index=retry_index,
            retry_after=error.retry_after,
            cap=self.retry_after_cap,
        )


def generate_with_fallback(
    *,
    targets: list[Target],
    request: GenerateRequest,
    policy: RetryPolicy | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> tuple[GenerateResult, list[Attempt]]:
    # Every target's keys and header values: any remote may echo any of them, and logs too.
    secrets = [s for t in targets for s in replace(request, options=t.options).secrets]
    with secrets_in_scope(request.secrets + secrets):
        return _try_targets(targets, request, policy or RetryPolicy.from_settings(), on_attempt)


def _try_targets(targets, request, policy, on_attempt):
    attempts: list[Attempt] = []
    last: ProviderError | None = None
    for target in targets:
        sub = replace(request, model=target.model, options=target.options)
        for try_number in range(1, policy.max_retries + 2):
            if request.is_cancelled():
                raise AllAttemptsFailed(attempts, _cancelled(target))
            result, error = _one_attempt(target, sub, try_number, attempts, on_attempt)
            if result is not None:
                return result, attempts
            last = error
            if error.code in ("cancelled", "preempted"):  # the task stops here, or goes back
                raise AllAttemptsFailed(attempts, error)
            if not error.retryable or try_number > policy.max_retries:
                break
            policy.sleep(policy.delay(error, try_number - 1))
    raise AllAttemptsFailed(attempts, last)


def _cancelled(target: Target) -> ProviderError:
    return ProviderError(
        "cancelled before the next attempt",
        code="cancelled",
        provider=target.provider,
        model=target.model,
    )


def _one_attempt(target, request, try_number, attempts, on_attempt):
    started, clock = time.time(), time.perf_counter()
    result = error = None
    try:
        result = get_provider(target.provider).generate(request)
        result.parsed = validate_result(
            result, request.response_format, on_max_tokens=request.on_max_tokens
        )
    except ProviderError as exc:
        error = exc
        error.partial = error.partial or result  # generated, then rejected by validation
    except Exception as exc:  # a provider bug must not take the worker down
        log.exception("provider %s crashed", target.provider)
        error = ProviderError(
            f"{target.provider} ({target.model}) failed: {type(exc).__name__}", code="internal"
        )
    if error is not None:
        error.message = scrub(error.message)
        result = None
    attempt = Attempt(
        provider=target.provider,
        model=target.model,
        try_number=try_number,
        started_at=started,
        duration_ms=round((time.perf_counter() - clock) * 1000, 1),
        outcome="ok" if error is None else "error",
        error_code=error.code if error else None,
        error_class=("retryable" if error.retryable else "final") if error else None,
        message=error.message if error else None,
        **_cost(result if error is None else error.partial),
    )
    attempts.append(attempt)
    if on_attempt:
        on_attempt(attempt)
    return result, error


def _cost(result: GenerateResult | None) -> dict:
    if result is None:
        return {}
    # Tokens resumed from an earlier run's checkpoint were charged to that run.
    resumed = result.meta.get("resumed_tokens") or 0
    return {
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens - resumed,
        "generation_ms": result.timings.get("generation_ms"),
    }
