"""Where providers meet the grammars library: a provider's structured-output method decides the
preflight, and a rejected answer becomes the ProviderError that fails the attempt."""

from typing import Any

from grammars.preflight import preflight, unsupported_names
from grammars.validation import OutputRejected, validate_output
from sop_llm.providers import get_provider
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateResult, ResponseFormat


def preflight_for(schema: dict, provider: str) -> dict:
    """grammars' preflight for the way `provider` enforces structured output."""
    method = get_provider(provider).capabilities.structured_output
    return {"provider": provider, **preflight(schema, method)}


def refusal(schema: dict, provider: str) -> str | None:
    """A 400 message naming the keywords `provider` would leave unenforced, or None."""
    result = preflight_for(schema, provider)
    if result["ok"]:
        return None
    names = unsupported_names(result)
    return f"{provider} cannot enforce {names}; see POST /api/v1/grammars/check"


def validate_result(result: GenerateResult, response_format: ResponseFormat) -> Any:
    """The parsed JSON of a structured answer, or a ProviderError that fails the attempt."""
    try:
        parsed = validate_output(result.text, result.finish_reason, response_format, result.parsed)
    except OutputRejected as exc:
        raise ProviderError(
            f"{result.provider} ({result.model}): {exc.message}",
            code=exc.code,
            provider=result.provider,
            model=result.model,
        ) from None
    if response_format.structured:
        structured = result.meta.setdefault("structured", {})
        structured.setdefault("enforcement", "validated")
        structured["validation"] = "passed"
    return parsed
