"""OpenAI wire format <-> our tasks. Requests become ordinary tasks; results become
chat.completion / text_completion objects and chunks."""

import time

from models_gpu.catalog import catalog_list
from sop_llm.providers import REGISTRY

PARAMS = (
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "top_k",
    "repeat_penalty",
    "max_tokens",
    "stop",
)
NATIVE_EXTRAS = (
    "response_format",
    "priority",
    "timeout_seconds",
    "deadline_seconds",
    "metadata",
    "webhook_url",
    "idempotency_key",
)
_FINISH = {"stop": "stop", "length": "length"}


class UnknownModel(LookupError):
    pass


def resolve_model(name: str) -> tuple[str, str]:
    """`provider/model`, or a local catalog name/alias -> (provider, model)."""
    provider, _, model = name.partition("/")
    if model and provider in REGISTRY:
        return provider, model
    for info in catalog_list():
        if info.valid and name in (info.name, info.alias):
            return "local", name
    raise UnknownModel(f"The model '{name}' does not exist")


def _fallbacks(value) -> list:
    """`["openai/gpt-4o-mini", ...]` (OpenAI style) or native `{provider, model}` objects."""
    if not isinstance(value, list):
        return value  # the task serializer names the wrong type
    return [_target(item) for item in value]


def _target(item):
    if isinstance(item, str):
        provider, model = resolve_model(item)
        return {"provider": provider, "model": model}
    return item


def task_data(body: dict, *, chat: bool) -> dict:
    """A validated OpenAI request (serializers.openai_request) -> the native task body, which
    the task serializer then checks like any other."""
    provider, model = resolve_model(body["model"])
    data: dict = {"provider": provider, "model": model}
    if chat:
        data["messages"] = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
    else:
        data["prompt"] = body["prompt"]
    params = {k: body[k] for k in PARAMS if k in body}
    if "max_completion_tokens" in body:
        params["max_tokens"] = body["max_completion_tokens"]
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    data["params"] = params
    data.update({k: body[k] for k in NATIVE_EXTRAS if k in body})
    if "fallbacks" in body or "fallback" in body:
        data["fallback"] = _fallbacks(body.get("fallbacks", body.get("fallback")))
    return data


def usage_of(task: dict) -> dict:
    usage = task.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_object(task: dict, *, chat: bool, model: str) -> dict:
    result = task["result"] or {}
    finish = _FINISH.get(result.get("finish_reason"), result.get("finish_reason") or "stop")
    if chat:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": result.get("text", ""), "refusal": None},
            "logprobs": None,
            "finish_reason": finish,
        }
    else:
        choice = {
            "index": 0,
            "text": result.get("text", ""),
            "logprobs": None,
            "finish_reason": finish,
        }
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{task['task_id']}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage_of(task),
        "system_fingerprint": None,
    }


def chunk(
    task_id: str,
    model: str,
    *,
    chat: bool,
    text: str | None = None,
    finish: str | None = None,
    role: bool = False,
    usage: dict | None = None,
) -> dict:
    if chat:
        delta = (
            {"role": "assistant", "content": ""}
            if role
            else ({"content": text} if text is not None else {})
        )
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
    data = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{task_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice] if not usage else [],
    }
    if usage:
        data["usage"] = usage
    return data


def models_list() -> dict:
    ids = []
    for info in catalog_list():
        if info.valid:
            ids += [info.name, f"local/{info.name}"] + ([info.alias] if info.alias else [])
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "sop-llm"} for i in ids]
    return {"object": "list", "data": data}
