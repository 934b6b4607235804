"""A validated OpenAI request (protocol.requests.openai_request) -> the native task body, which
the task serializer then checks like any other."""

from tasks.openai.protocol.requests import MESSAGE_FIELDS, NATIVE_EXTRAS, PARAMS
from tasks.targets import resolve_model


def _fallbacks(value, field: str) -> list:
    """`["openai/gpt-4o-mini", ...]` (OpenAI style) or native `{provider, model}` objects."""
    if not isinstance(value, list):
        return value  # the task serializer names the wrong type
    return [_target(item, f"{field}.{i}") for i, item in enumerate(value)]


def _target(item, param: str):
    if isinstance(item, str):
        provider, model = resolve_model(item, param)
        return {"provider": provider, "model": model}
    return item


def task_data(body: dict, *, chat: bool) -> dict:
    provider, model = resolve_model(body["model"])
    data: dict = {"provider": provider, "model": model}
    if chat:
        data["messages"] = [
            {k: m[k] for k in MESSAGE_FIELDS if m.get(k) is not None} for m in body["messages"]
        ]
    else:
        data["prompt"] = body["prompt"]
    data["params"] = _params(body, chat=chat)
    data.update({k: body[k] for k in NATIVE_EXTRAS if k in body})
    data["on_max_tokens"] = "return"  # OpenAI answers finish_reason "length", never an error
    if "safety_identifier" in body:  # the newer name of `user` (the same when both are given)
        data["user"] = body["safety_identifier"]
    if "fallbacks" in body or "fallback" in body:
        field = "fallbacks" if "fallbacks" in body else "fallback"
        data["fallback"] = _fallbacks(body[field], field)
    return data


def _params(body: dict, *, chat: bool) -> dict:
    params = {k: body[k] for k in PARAMS if k in body}
    if "max_completion_tokens" in body:
        params["max_tokens"] = body["max_completion_tokens"]
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    params.update(_logprobs(body, chat=chat))
    return params


def _logprobs(body: dict, *, chat: bool) -> dict:
    if chat:
        return {k: body[k] for k in ("logprobs", "top_logprobs") if k in body}
    if body.get("logprobs") is None:
        return {}
    return {"logprobs": True, "top_logprobs": body["logprobs"]}


def streams_whole(body: dict, *, chat: bool) -> bool:
    """A stream that sends each choice whole once it is complete: its logprobs, tool calls or
    several choices are known only then (the text relay carries one choice's text alone)."""
    logprobs = body.get("logprobs") if chat else body.get("logprobs") is not None
    tools = bool(body.get("tools")) and body.get("tool_choice") != "none"
    return bool(logprobs) or tools or body.get("n", 1) > 1
