"""Bounds for what a JSON schema leaves unbounded and greedy decoding runs away with: a small
model at temperature 0 may write `1111111…` until max_tokens. llama.cpp's own schema converter
caps an integer at 16 digits; the llguidance path gets the same cap here, as a minimum/maximum
on every integer and number that has none (the answer still fits the schema as written)."""

from typing import Any

LIMIT = 10**16 - 1  # 16 digits, as llama.cpp's json-schema-to-grammar
NUMERIC = {"integer", "number"}
_DATA = {"enum", "const", "default", "examples"}  # values, not schemas


def bounded(schema: Any) -> Any:
    """The schema with every unbounded integer/number given bounds of ±LIMIT."""
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = {k: v if k in _DATA else bounded(v) for k, v in schema.items()}
    if _numeric(node.get("type")):
        if "maximum" not in node and "exclusiveMaximum" not in node:
            node["maximum"] = LIMIT
        if "minimum" not in node and "exclusiveMinimum" not in node:
            node["minimum"] = -LIMIT
    return node


def _numeric(kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    return any(isinstance(k, str) and k in NUMERIC for k in kinds)
