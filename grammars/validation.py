"""Every structured answer, from any provider, is parsed and checked before it counts."""

import json
from typing import Any

import jsonschema

from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateResult, ResponseFormat


def validate_output(result: GenerateResult, response_format: ResponseFormat) -> Any:
    """The parsed JSON of a structured answer, or a ProviderError that fails the attempt."""
    if not response_format.structured:
        return None
    where = f"{result.provider} ({result.model})"
    if result.finish_reason == "length":
        raise ProviderError(
            f"{where}: the answer was cut off at max_tokens before the JSON was complete",
            code="truncated",
            provider=result.provider,
            model=result.model,
        )
    parsed = result.parsed if result.parsed is not None else _parse(result, where)
    if response_format.type == "json_object" and not isinstance(parsed, dict):
        raise _invalid(where, f"expected a JSON object, got {type(parsed).__name__}", result)
    if response_format.type == "json_schema":
        validator = jsonschema.Draft202012Validator(
            response_format.schema or {},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        error = jsonschema.exceptions.best_match(validator.iter_errors(parsed))
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise _invalid(where, f"schema violation at {path}: {error.message}", result)
    structured = result.meta.setdefault("structured", {})
    structured.setdefault("enforcement", "validated")
    structured["validation"] = "passed"
    return parsed


def _parse(result: GenerateResult, where: str) -> Any:
    try:
        return json.loads(result.text)
    except ValueError as exc:
        raise _invalid(where, f"the answer is not valid JSON ({exc})", result) from None


def _invalid(where: str, detail: str, result: GenerateResult) -> ProviderError:
    return ProviderError(
        f"{where}: {detail}", code="invalid_output", provider=result.provider, model=result.model
    )
