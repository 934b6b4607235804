"""Input items of the Responses API <-> chat messages (what a task carries).

Items are kept normalized (every message's content a list of typed text parts), so a stored
response's input reads back the same however it was sent."""

from typing import Any

from rest_framework import serializers

from sop_llm.core.strict import wrong_type

ROLES = ("user", "system", "developer", "assistant")
TEXT_PARTS = {"input_text", "output_text"}
# Descriptive fields of an item echoed back from an earlier response: they ask for nothing.
ITEM_ECHO = {"id", "status"}
MESSAGE_KEYS = {"type", "role", "content", *ITEM_ECHO}
CALL_KEYS = {"type", "call_id", "name", "arguments", *ITEM_ECHO}
OUTPUT_KEYS = {"type", "call_id", "output", *ITEM_ECHO}


def _refuse(path: list, message: str) -> serializers.ValidationError:
    detail: Any = message
    for part in reversed(path):
        detail = {str(part): detail}
    return serializers.ValidationError(detail)


def _string(value: Any, path: list) -> str:
    if not isinstance(value, str):
        raise _refuse(path, str(wrong_type("a string", value).detail[0]))
    return value


def _unknown(item: dict, allowed: set, path: list) -> None:
    for name in item:
        if name not in allowed:
            raise _refuse([*path, name], "not supported by this service yet")


def _part(part: Any, path: list) -> dict:
    if not isinstance(part, dict):
        raise _refuse(path, "a content part is an object")
    if part.get("type") not in TEXT_PARTS:
        raise _refuse([*path, "type"], "only input_text and output_text parts are supported")
    _unknown(part, {"type", "text", "annotations", "logprobs"}, path)
    return {"type": part["type"], "text": _string(part.get("text"), [*path, "text"])}


def _message(item: dict, path: list) -> dict:
    _unknown(item, MESSAGE_KEYS, path)
    role = item.get("role")
    if role not in ROLES:
        raise _refuse([*path, "role"], f"one of {', '.join(ROLES)}")
    content = item.get("content")
    kind = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts = [{"type": kind, "text": content}]
    elif isinstance(content, list):
        parts = [_part(p, [*path, "content", i]) for i, p in enumerate(content)]
    else:
        raise _refuse([*path, "content"], "a string or an array of content parts")
    return {"type": "message", "role": role, "content": parts}


def _call(item: dict, path: list) -> dict:
    _unknown(item, CALL_KEYS, path)
    fields = ("call_id", "name", "arguments")
    return {"type": "function_call", **{f: _string(item.get(f), [*path, f]) for f in fields}}


def _output(item: dict, path: list) -> dict:
    _unknown(item, OUTPUT_KEYS, path)
    output = item.get("output")
    if isinstance(output, list):  # text parts of a tool's answer
        output = "".join(_part(p, [*path, "output", i])["text"] for i, p in enumerate(output))
    call_id = _string(item.get("call_id"), [*path, "call_id"])
    return {
        "type": "function_call_output",
        "call_id": call_id,
        "output": _string(output, [*path, "output"]),
    }


KINDS = {"message": _message, "function_call": _call, "function_call_output": _output}


def input_items(value: Any) -> list[dict]:
    """`input` (a string or a list of items) -> normalized items; ValidationError names the
    path under `input`."""
    if isinstance(value, str):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}
        ]
    if not isinstance(value, list):
        raise wrong_type("a string or an array of input items", value)
    return [_item(item, [i]) for i, item in enumerate(value)]


def _item(item: Any, path: list) -> dict:
    if not isinstance(item, dict):
        raise _refuse(path, "an input item is an object")
    kind = item.get("type", "message")
    if kind not in KINDS:
        raise _refuse([*path, "type"], f"one of {', '.join(KINDS)} (others are not supported yet)")
    return KINDS[kind](item, path)


def messages_of(items: list[dict], instructions: str | None = None) -> list[dict]:
    """Normalized items -> chat messages (consecutive function calls: one assistant turn)."""
    messages = [{"role": "system", "content": instructions}] if instructions else []
    for item in items:
        if item["type"] == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append({"role": role, "content": "".join(p["text"] for p in item["content"])})
        elif item["type"] == "function_call":
            _add_call(messages, item)
        else:
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
    return messages


def _add_call(messages: list[dict], item: dict) -> None:
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }
    last = messages[-1] if messages else {}
    if last.get("role") == "assistant" and last.get("tool_calls") and not last.get("content"):
        last["tool_calls"].append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
