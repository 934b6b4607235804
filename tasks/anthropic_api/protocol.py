"""The Messages API request as Anthropic's clients send it, checked field by field.

Strict like the other doors: a field we cannot honour is a 400 naming it (only its no-op value
passes), never silently ignored. Sampling values, tools and fallbacks are checked again by the
task serializer after translation (translate.py), so their rules live in one place.
"""

from typing import Any

from tasks.anthropic_api.blocks import RequestError, cache_hint, content_blocks, system_text

MAX_MODEL_LENGTH = 300
MAX_STOP_SEQUENCES = 8
# Fields we do not implement -> their no-op values (the only ones that pass).
REFUSED = {
    "thinking": ({"type": "disabled"},),
    "service_tier": ("auto", "standard_only"),
    "container": (),
    "context_management": (),
    "diagnostics": (),
    "inference_geo": (),
    "mcp_servers": (),
    "output_config": (),
    "output_format": (),
    "speed": (),
    "user_profile_id": (),
    "workspace_id": (),
}
# Ours beside Anthropic's (their current models fix sampling; llama.cpp's does not).
EXTENSIONS = ("temperature", "top_p", "top_k", "priority", "fallbacks")
KNOWN = {"model", "max_tokens", "messages", "system", "stop_sequences", "stream", "tools"}
KNOWN |= {"tool_choice", "metadata", "cache_control", *REFUSED, *EXTENSIONS}
TOOL_CHOICES = ("auto", "any", "tool", "none")


def messages_request(body: Any, *, counting: bool = False) -> dict:
    """The checked request (RequestError names the field). `counting`: count_tokens's subset."""
    if not isinstance(body, dict):
        raise RequestError(None, "the body must be a JSON object")
    _known_fields(body, counting)
    checked = {"model": _model(body.get("model")), "messages": _messages(body.get("messages"))}
    if not counting or "max_tokens" in body:
        checked["max_tokens"] = _max_tokens(body.get("max_tokens"))
    if body.get("system") is not None:
        checked["system"] = system_text(body["system"])
    checked.update(_options(body))
    return checked


def _known_fields(body: dict, counting: bool) -> None:
    for name, value in body.items():
        if name not in KNOWN:
            raise RequestError(name, "unknown field")
        if name in REFUSED and value is not None and value not in REFUSED[name]:
            raise RequestError(name, "not supported by this service")
        if counting and name in ("stream", "stop_sequences", "priority", "fallbacks"):
            raise RequestError(name, "has no meaning when counting tokens")


def _model(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_MODEL_LENGTH:
        raise RequestError("model", f"a string of 1 to {MAX_MODEL_LENGTH} characters is required")
    return value


def _max_tokens(value: Any) -> int:
    if value is None:
        raise RequestError("max_tokens", "Field required")
    if type(value) is not int or value < 1:
        raise RequestError("max_tokens", "an integer of at least 1 is required")
    return value


def _messages(value: Any) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise RequestError("messages", "a non-empty array of messages is required")
    checked = [_message(i, m) for i, m in enumerate(value)]
    if checked[-1]["role"] != "user":
        raise RequestError(
            f"messages.{len(checked) - 1}.role",
            "the last message must be the user's (prefilling the answer is not supported)",
        )
    return checked


def _message(index: int, message: Any) -> dict:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise RequestError(where, "a message object is required")
    extra = sorted(set(message) - {"role", "content"})
    if extra:
        raise RequestError(f"{where}.{extra[0]}", "unknown field")
    if message.get("role") not in ("user", "assistant"):
        raise RequestError(f"{where}.role", "must be 'user' or 'assistant'")
    blocks = content_blocks(message.get("content"), where=f"{where}.content")
    return {"role": message["role"], "content": blocks}


def _options(body: dict) -> dict:
    options = {k: body[k] for k in EXTENSIONS if body.get(k) is not None}
    if body.get("stream") is not None:
        options["stream"] = _boolean("stream", body["stream"])
    if body.get("stop_sequences") is not None:
        options["stop_sequences"] = _stops(body["stop_sequences"])
    if body.get("metadata") is not None:
        options["user"] = _user_id(body["metadata"])
    cache_hint(body.get("cache_control"), where="cache_control")
    options.update(_tools(body))
    return {k: v for k, v in options.items() if v is not None}


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RequestError(name, "a boolean is required")
    return value


def _stops(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise RequestError("stop_sequences", "an array of non-empty strings is required")
    if len(value) > MAX_STOP_SEQUENCES:
        raise RequestError("stop_sequences", f"at most {MAX_STOP_SEQUENCES} are supported")
    return value


def _user_id(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        raise RequestError("metadata", "an object is required")
    extra = sorted(set(metadata) - {"user_id"})
    if extra:
        raise RequestError(f"metadata.{extra[0]}", "unknown field")
    user = metadata.get("user_id")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise RequestError("metadata.user_id", "a string of at most 256 characters is required")
    return user


def _tools(body: dict) -> dict:
    tools, choice = body.get("tools"), body.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise RequestError("tool_choice", "needs tools")
        return {}
    if not isinstance(tools, list):
        raise RequestError("tools", "an array of tools is required")
    checked = {"tools": [_tool(i, t) for i, t in enumerate(tools)]}
    if choice is not None:
        checked["tool_choice"] = _tool_choice(choice)
    return checked


def _tool(index: int, tool: Any) -> dict:
    where = f"tools.{index}"
    if not isinstance(tool, dict):
        raise RequestError(where, "a tool object is required")
    if tool.get("type") not in (None, "custom"):
        raise RequestError(f"{where}.type", "only custom (client) tools are supported")
    extra = sorted(set(tool) - {"type", "name", "description", "input_schema", "cache_control"})
    if extra:
        raise RequestError(f"{where}.{extra[0]}", "not supported by this service")
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise RequestError(f"{where}.name", "a non-empty string is required")
    if not isinstance(tool.get("input_schema"), dict):
        raise RequestError(f"{where}.input_schema", "a JSON Schema object is required")
    if not isinstance(tool.get("description", ""), str):
        raise RequestError(f"{where}.description", "a string is required")
    cache_hint(tool.get("cache_control"), where=f"{where}.cache_control")
    return {k: tool[k] for k in ("name", "description", "input_schema") if k in tool}


def _tool_choice(choice: Any) -> dict:
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
        raise RequestError("tool_choice.type", f"one of {', '.join(TOOL_CHOICES)} is required")
    extra = sorted(set(choice) - {"type", "name", "disable_parallel_tool_use"})
    if extra:
        raise RequestError(f"tool_choice.{extra[0]}", "unknown field")
    if (choice["type"] == "tool") != isinstance(choice.get("name"), str):
        raise RequestError("tool_choice.name", "a tool's name, only with type 'tool'")
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None:
        _boolean("tool_choice.disable_parallel_tool_use", parallel)
    return choice
