"""Which keyword of a JSON schema is enforced, and how, by a structured-output method -- before
submit. No provider names here: the providers layer maps a provider to its method.

Paths: `grammar` (the local model cannot produce anything else), `provider_strict` (OpenAI's
strict mode), `validated` (checked with jsonschema after the answer; a violation is a failed
attempt), `annotation` (constrains nothing), `unsupported` (nothing would enforce it: refused).
"""

import json
from typing import Any

import jsonschema

from grammars.compile import GrammarError, check_compiles
from grammars.recursion import unguarded_cycle

ANNOTATIONS = {
    "title",
    "description",
    "$schema",
    "$id",
    "$comment",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
    "$anchor",
}
OPENAI_STRICT = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "items",
    "anyOf",
    "$ref",
    "$defs",
    "definitions",
}
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)
CHECKABLE_FORMATS = set(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)


def keywords(schema: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """Every (path, keyword, value) in a schema, subschemas included."""
    if not isinstance(schema, dict):
        return []
    found = [(path or "/", key, value) for key, value in schema.items()]
    for key in _SUBSCHEMA_MAPS:
        for name, sub in (
            (schema.get(key) or {}).items() if isinstance(schema.get(key), dict) else []
        ):
            found += keywords(sub, f"{path}/{key}/{name}")
    for key in _SUBSCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key) or []):
            found += keywords(sub, f"{path}/{key}/{index}")
    for key in _SUBSCHEMAS:
        if isinstance(schema.get(key), dict):
            found += keywords(schema[key], f"{path}/{key}")
    return found


def strict_compatible(schema: Any) -> bool:
    """OpenAI strict mode: known keywords only; every object closed with all keys required."""
    for _, key, _ in keywords(schema):
        if key not in OPENAI_STRICT | ANNOTATIONS:
            return False
    return all(_closed(node) for node in _objects(schema))


def _objects(schema: Any):
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


def _closed(node: dict) -> bool:
    props = set((node.get("properties") or {}).keys())
    return node.get("additionalProperties") is False and set(node.get("required") or []) == props


def preflight(
    schema: dict, method: str, engine: str = "llguidance", vocab_path: str | None = None
) -> dict:
    """Per keyword: how it will be enforced by a target whose structured-output method is
    `method` (grammar, json_schema, tool_use, json_mode, none); `ok` False when anything is
    unsupported. For `grammar`, the schema is compiled by `engine`, as the worker will."""
    cycle = unguarded_cycle(schema)
    if cycle:  # no value fits it: every method would fail (or loop) on it
        bad = [{"path": cycle, "keyword": "$ref", "enforced_by": "unsupported"}]
        error = "the schema refers to itself without reading anything: no finite value fits it"
        return {
            "ok": False,
            "keywords": bad,
            "unsupported": bad,
            "enforcement": "none",
            "error": error,
        }
    refused, error = (
        _engine_refuses(schema, engine, vocab_path) if method == "grammar" else (set(), None)
    )
    strict = method == "json_schema" and strict_compatible(schema)
    report = [
        {"path": path, "keyword": key, "enforced_by": _how(key, value, method, strict, refused)}
        for path, key, value in keywords(schema)
    ]
    bad = [r for r in report if r["enforced_by"] == "unsupported"]
    if error and not bad:  # refused as a whole: no keyword to blame, still not enforceable
        bad = [{"path": "/", "keyword": "(schema)", "enforced_by": "unsupported"}]
    enforcement = "grammar" if method == "grammar" else "provider_strict" if strict else "validated"
    result = {"ok": not bad, "keywords": report, "unsupported": bad, "enforcement": enforcement}
    return {**result, "error": error} if error else result


def _engine_refuses(
    schema: dict, engine: str, vocab_path: str | None = None
) -> tuple[set[str], str | None]:
    """(keywords the engine names, its message) -- both empty when it compiles."""
    try:
        check_compiles("json_schema", _canonical(schema), engine, vocab_path)
    except GrammarError as exc:
        return set(exc.keywords), str(exc)
    return set(), None


def _how(key: str, value: Any, method: str, strict: bool, refused: set) -> str:
    if key in ANNOTATIONS:
        return "annotation"
    if method == "grammar":
        return "unsupported" if key in refused else "grammar"
    if key == "format" and value not in CHECKABLE_FORMATS:
        return "unsupported"
    if strict and key in OPENAI_STRICT:
        return "provider_strict"
    return "validated"


def _canonical(schema: dict) -> str:
    return json.dumps(schema, sort_keys=True)


def unsupported_names(result: dict) -> str:
    """What a preflight found nothing to enforce, and the engine's own words, for a message."""
    names = ", ".join(f"'{u['keyword']}' at {u['path']}" for u in result["unsupported"])
    return f"{names} ({result['error']})" if result.get("error") else names
