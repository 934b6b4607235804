"""Content blocks: `text`, `tool_use`, `tool_result` are taken; `image` and `document` are a
400 naming them (the models served are text-only), as is any other kind."""

from typing import Any

TEXT_ONLY = ("image", "document")
CACHE = {"cache_control"}  # a caching hint: local reuses the prompt's KV cache by itself
BLOCK_FIELDS = {
    "text": {"type", "text", "citations"} | CACHE,
    "tool_use": {"type", "id", "name", "input"} | CACHE,
    "tool_result": {"type", "tool_use_id", "content", "is_error"} | CACHE,
}


class RequestError(ValueError):
    """A request field we refuse: `field` is its dotted path as the caller sent it."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def content_blocks(content: Any, *, where: str) -> list[dict]:
    """A string or an array of blocks -> the blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise RequestError(where, "a string or an array of content blocks is required")
    return [_block(block, where=f"{where}.{i}") for i, block in enumerate(content)]


def _block(block: Any, *, where: str) -> dict:
    if not isinstance(block, dict):
        raise RequestError(where, "a content block object is required")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise RequestError(f"{where}.type", "a block type (a string) is required")
    if kind in TEXT_ONLY:
        raise RequestError(f"{where}.type", f"{kind} blocks are not supported: text-only models")
    if kind not in BLOCK_FIELDS:
        raise RequestError(f"{where}.type", f"{kind!r} blocks are not supported")
    extra = sorted(set(block) - BLOCK_FIELDS[kind])
    if extra:
        raise RequestError(f"{where}.{extra[0]}", "not supported by this service")
    if block.get("citations"):
        raise RequestError(f"{where}.citations", "not supported by this service")
    cache_hint(block.get("cache_control"), where=f"{where}.cache_control")
    return _CHECKS[kind](block, where)


def cache_hint(value: Any, *, where: str) -> None:
    """`cache_control` is taken as a hint (see fields.py), but only in its own shape."""
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        raise RequestError(where, 'only {"type": "ephemeral"} (with an optional ttl)')
    if not set(value) <= {"type", "ttl"} or value.get("ttl", "5m") not in ("5m", "1h"):
        raise RequestError(where, 'only {"type": "ephemeral"} (with an optional ttl)')


def _text(block: dict, where: str) -> dict:
    if not isinstance(block.get("text"), str):
        raise RequestError(f"{where}.text", "a string is required")
    return {"type": "text", "text": block["text"]}


def _tool_use(block: dict, where: str) -> dict:
    for name in ("id", "name"):
        if not isinstance(block.get(name), str) or not block[name]:
            raise RequestError(f"{where}.{name}", "a non-empty string is required")
    if not isinstance(block.get("input"), dict):
        raise RequestError(f"{where}.input", "an object is required")
    return {k: block[k] for k in ("type", "id", "name", "input")}


def _tool_result(block: dict, where: str) -> dict:
    if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
        raise RequestError(f"{where}.tool_use_id", "a non-empty string is required")
    content = block.get("content", "")
    parts = content_blocks(content, where=f"{where}.content")
    if any(p["type"] != "text" for p in parts):
        raise RequestError(f"{where}.content", "only text is supported in a tool result")
    if not isinstance(block.get("is_error", False), bool):
        raise RequestError(f"{where}.is_error", "a boolean is required")
    text = "".join(p["text"] for p in parts)
    return {
        "type": "tool_result",
        "tool_use_id": block["tool_use_id"],
        "text": text,
        "is_error": block.get("is_error", False),
    }


_CHECKS = {"text": _text, "tool_use": _tool_use, "tool_result": _tool_result}


def system_text(system: Any) -> str:
    """`system`: a string, or text blocks (joined)."""
    blocks = content_blocks(system, where="system")
    if any(b["type"] != "text" for b in blocks):
        raise RequestError("system", "only text blocks are supported in system")
    return "\n\n".join(b["text"] for b in blocks) if isinstance(system, list) else system
