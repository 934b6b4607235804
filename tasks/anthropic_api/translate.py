"""Anthropic's Messages API <-> our tasks. A checked request (protocol.py) becomes the native
task body, which the task serializer checks like any other; a task becomes a `message`."""

import json

from tasks.openai.translate import resolve_model
from tasks.result import ResultChoice, TaskResult

# A task's finish_reason -> Anthropic's stop_reason (our results do not say which stop
# sequence matched, so a stop is an end_turn; see README).
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
SAMPLING = ("temperature", "top_p", "top_k")
# native field -> Anthropic's name, for the task serializer's refusals
NAMES = {"params.max_tokens": "max_tokens", "params.stop": "stop_sequences", "user": "metadata"}
NAMES |= {"provider": "model", "fallback": "fallbacks", "tool_choice": "tool_choice"}


def task_data(request: dict) -> dict:
    provider, model = resolve_model(request["model"])
    params = {"max_tokens": request["max_tokens"]}
    params.update({k: request[k] for k in SAMPLING if k in request})
    if "stop_sequences" in request:
        params["stop"] = request["stop_sequences"]
    data = {"provider": provider, "model": model, "messages": task_messages(request)}
    data["params"] = params
    data.update({k: request[k] for k in ("priority", "user") if k in request})
    if "fallbacks" in request:
        data["fallback"] = _fallbacks(request["fallbacks"])
    data.update(_tools(request))
    return data


def _fallbacks(value) -> list:
    if not isinstance(value, list):
        return value  # the task serializer names the wrong type
    targets = [resolve_model(v) if isinstance(v, str) else v for v in value]
    return [{"provider": t[0], "model": t[1]} if isinstance(t, tuple) else t for t in targets]


def task_messages(request: dict) -> list[dict]:
    """Anthropic's turns -> OpenAI-shaped task messages: tool results become `tool` messages,
    tool_use blocks an assistant's tool_calls."""
    messages = [{"role": "system", "content": request["system"]}] if "system" in request else []
    for message in request["messages"]:
        convert = _assistant if message["role"] == "assistant" else _user
        messages += convert(message["content"])
    return messages


def _user(blocks: list[dict]) -> list[dict]:
    results = [b for b in blocks if b["type"] == "tool_result"]
    tool = [
        {"role": "tool", "tool_call_id": b["tool_use_id"], "content": _result_text(b)}
        for b in results
    ]
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    return tool + ([{"role": "user", "content": text}] if text or not results else [])


def _result_text(block: dict) -> str:
    return f"Error: {block['text']}" if block["is_error"] else block["text"]


def _assistant(blocks: list[dict]) -> list[dict]:
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls = [
        {
            "id": b["id"],
            "type": "function",
            "function": {"name": b["name"], "arguments": json.dumps(b["input"])},
        }
        for b in blocks
        if b["type"] == "tool_use"
    ]
    message = {"role": "assistant", "content": text if text or not calls else None}
    return [{**message, "tool_calls": calls} if calls else message]


def _tools(request: dict) -> dict:
    if "tools" not in request:
        return {}
    tools = [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "parameters": t["input_schema"],
                **({"description": t["description"]} if t.get("description") else {}),
            },
        }
        for t in request["tools"]
    ]
    choice = request.get("tool_choice") or {"type": "auto"}
    data = {"tools": tools, "tool_choice": _choice(choice)}
    if choice.get("disable_parallel_tool_use"):
        data["parallel_tool_calls"] = False
    return data


def _choice(choice: dict):
    if choice["type"] == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice["type"]]


def usage_of(task: dict) -> dict:
    usage = task.get("usage") or {}
    return {
        "input_tokens": usage.get("prompt_tokens", 0),
        "output_tokens": usage.get("completion_tokens", 0),
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": usage.get("cached_prompt_tokens"),
    }


def content_of(choice: ResultChoice) -> list[dict]:
    text = choice.text
    blocks = [{"type": "text", "text": text}] if text or not choice.tool_calls else []
    return blocks + [_tool_use(call) for call in choice.tool_calls or []]


def _tool_use(call: dict) -> dict:
    function = call["function"]
    try:
        arguments = json.loads(function["arguments"] or "{}")
    except json.JSONDecodeError:
        arguments = {}
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}


def stop_reason(choice: ResultChoice) -> str:
    return STOP_REASONS.get(choice.finish, "end_turn")


def message_object(task: dict, *, model: str) -> dict:
    choice = TaskResult.from_record(task["result"]).choices[0]
    return {
        **message_head(task["task_id"], model),
        "content": content_of(choice),
        "stop_reason": stop_reason(choice),
        "usage": usage_of(task),
    }


def message_head(task_id: str, model: str) -> dict:
    return {
        "id": f"msg_{task_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }


def anthropic_field(field: str | None) -> str | None:
    """A native field path -> the request's own name for it (`params.stop` -> stop_sequences)."""
    if not field:
        return field
    for native, name in NAMES.items():
        if field == native or field.startswith(native + "."):
            return name + field[len(native) :] if native != "user" else "metadata.user_id"
    if field.startswith("params."):
        return field.removeprefix("params.")
    return field.replace(".function.parameters", ".input_schema").replace(".function", "")
