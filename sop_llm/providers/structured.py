"""Where providers meet the grammars library: a provider's structured-output method decides the
preflight, and a rejected answer becomes the ProviderError that fails the attempt."""

from typing import Any

from django.conf import settings

from grammars.compile import ENGINES, GrammarError
from grammars.preflight import preflight, unsupported_names
from grammars.validation import OutputRejected, validate_output
from sop_llm.providers import get_provider
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateResult, ResponseFormat


def method_of(provider: str) -> str:
    """How `provider` enforces structured output: grammar, json_schema, tool_use or none."""
    return get_provider(provider).capabilities.structured_output


def grammar_engine(options: dict | None) -> str:
    """The grammar engine a `grammar` provider will use for a target with these options."""
    name = (options or {}).get("grammar_engine") or settings.GRAMMAR_ENGINE
    if name not in ENGINES:
        raise GrammarError(f"unknown grammar_engine {name!r}; use one of {', '.join(ENGINES)}")
    return name


def preflight_for(
    schema: dict, provider: str, options: dict | None = None, vocab_path: str | None = None
) -> dict:
    """grammars' preflight for the way `provider` (with these options) enforces the schema;
    `vocab_path` is the model file whose vocabulary a native grammar is parsed against."""
    method = method_of(provider)
    engine = grammar_engine(options) if method == "grammar" else ENGINES[0]
    return {"provider": provider, **preflight(schema, method, engine, vocab_path)}


def refusal(
    schema: dict, provider: str, options: dict | None = None, vocab_path: str | None = None
) -> str | None:
    """A 400 message naming what `provider` would leave unenforced, or None."""
    result = preflight_for(schema, provider, options, vocab_path)
    if result["ok"]:
        return None
    names = unsupported_names(result)
    return f"{provider} cannot enforce {names}; see POST /api/v1/grammars/check"


def validate_result(
    result: GenerateResult, response_format: ResponseFormat, *, on_max_tokens: str = "fail"
) -> Any:
    """The parsed JSON of a structured answer, or a ProviderError that fails the attempt; an
    answer cut by max_tokens is returned unparsed when the caller takes it (`return`)."""
    if result.tool_calls:  # a call instead of the answer: the format holds the answer only
        return None
    if on_max_tokens == "return" and result.finish_reason == "length":
        if response_format.structured:
            result.meta.setdefault("structured", {})["validation"] = "truncated"
        return None
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
