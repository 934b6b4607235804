"""Every structured answer, from any source, is parsed and checked before it counts."""

import json
from typing import Any

import jsonschema

from grammars.formats import ResponseFormat


class OutputRejected(Exception):
    """A structured answer that does not count: `code` is `truncated` or `invalid_output`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def validate_output(
    text: str, finish_reason: str, response_format: ResponseFormat, parsed: Any = None
) -> Any:
    """The parsed JSON of a structured answer (None for free text), or OutputRejected."""
    if not response_format.structured:
        return None
    if finish_reason == "length":
        raise OutputRejected(
            "truncated", "the answer was cut off at max_tokens before the JSON was complete"
        )
    parsed = parsed if parsed is not None else _parse(text)
    if response_format.type == "json_object" and not isinstance(parsed, dict):
        raise _invalid(f"expected a JSON object, got {type(parsed).__name__}")
    if response_format.type == "json_schema":
        _check_schema(parsed, response_format.schema or {})
    return parsed


def _check_schema(parsed: Any, schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(parsed))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise _invalid(f"schema violation at {path}: {error.message}")


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _invalid(f"the answer is not valid JSON ({exc})") from None


def _invalid(detail: str) -> OutputRejected:
    return OutputRejected("invalid_output", detail)
