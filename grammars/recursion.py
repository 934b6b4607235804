"""A schema that refers to itself without reading anything first (`{"$ref": "#"}`, or `a` ->
allOf -> `b` -> `a`) describes no finite value: no grammar can be built for it and jsonschema
recurses without end validating against it. Found here, so it is refused at submit.

A reference under `properties`, `items` and the like is fine (a tree of nodes): it applies to a
part of the value, so each step reads some of it. Only the applicators that apply to the same
value (`$ref`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`) can loop."""

from typing import Any

_SAME_VALUE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_VALUE = ("not", "if", "then", "else")


def unguarded_cycle(schema: Any) -> str | None:
    """The JSON pointer of a `$ref` that reaches its own schema on the same value, or None."""
    return _visit(schema, schema, "#", [])


def _visit(root: Any, node: Any, pointer: str, stack: list[str]) -> str | None:
    if not isinstance(node, dict):
        return None
    if pointer in stack:
        return pointer
    stack = [*stack, pointer]
    for sub_pointer, sub in _same_value(root, node, pointer):
        found = _visit(root, sub, sub_pointer, stack)
        if found:
            return found
    return None


def _same_value(root: Any, node: dict, pointer: str):
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        target = _resolve(root, ref)
        if target is not None:
            yield ref.rstrip("/") or "#", target
    for key in _SAME_VALUE_LISTS:
        for index, sub in enumerate(node.get(key) or [] if isinstance(node.get(key), list) else []):
            yield f"{pointer}/{key}/{index}", sub
    for key in _SAME_VALUE:
        if isinstance(node.get(key), dict):
            yield f"{pointer}/{key}", node[key]


def _resolve(root: Any, ref: str) -> Any:
    node = root
    for part in ref.removeprefix("#").split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node
