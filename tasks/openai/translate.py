"""OpenAI wire format <-> our tasks. Requests become ordinary tasks; results become
chat.completion / text_completion objects and chunks."""

import time

from models_gpu.catalog import catalog_list
from sop_llm.providers import REGISTRY
from tasks.result import ResultChoice, TaskResult

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
    "n",
    "logit_bias",
)
NATIVE_EXTRAS = (
    "response_format",
    "priority",
    "timeout_seconds",
    "deadline_seconds",
    "metadata",
    "webhook_url",
    "idempotency_key",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
)
MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id", "name")


class UnknownModel(LookupError):
    def __init__(self, message: str, param: str = "model"):
        super().__init__(message)
        self.param = param  # the request field that named it: model, or fallbacks.N


def resolve_model(name: str, param: str = "model") -> tuple[str, str]:
    """`provider/model`, or a local catalog name/alias -> (provider, model)."""
    provider, _, model = name.partition("/")
    if model and provider in REGISTRY:
        return provider, model
    for info in catalog_list():
        if info.valid and name in (info.name, info.alias):
            return "local", name
    raise UnknownModel(f"The model '{name}' does not exist", param)


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
    """A validated OpenAI request (serializers.openai_request) -> the native task body, which
    the task serializer then checks like any other."""
    provider, model = resolve_model(body["model"])
    data: dict = {"provider": provider, "model": model}
    if chat:
        data["messages"] = [
            {k: m[k] for k in MESSAGE_FIELDS if m.get(k) is not None} for m in body["messages"]
        ]
    else:
        data["prompt"] = body["prompt"]
    params = {k: body[k] for k in PARAMS if k in body}
    if "max_completion_tokens" in body:
        params["max_tokens"] = body["max_completion_tokens"]
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    params.update(_logprobs(body, chat=chat))
    data["params"] = params
    data.update({k: body[k] for k in NATIVE_EXTRAS if k in body})
    data["on_max_tokens"] = "return"  # OpenAI answers finish_reason "length", never an error
    if "safety_identifier" in body:  # the newer name of `user` (the same when both are given)
        data["user"] = body["safety_identifier"]
    if "fallbacks" in body or "fallback" in body:
        field = "fallbacks" if "fallbacks" in body else "fallback"
        data["fallback"] = _fallbacks(body[field], field)
    return data


def _logprobs(body: dict, *, chat: bool) -> dict:
    if chat:
        return {k: body[k] for k in ("logprobs", "top_logprobs") if k in body}
    if body.get("logprobs") is None:
        return {}
    return {"logprobs": True, "top_logprobs": body["logprobs"]}


def usage_of(task: dict) -> dict:
    usage = task.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def legacy_logprobs(choice: ResultChoice, offset: int = 0) -> dict | None:
    """The Completions API's older shape of the same numbers."""
    entries = choice.logprobs
    if entries is None:
        return None
    offsets, at = [], offset
    for entry in entries:
        offsets.append(at)
        at += len(entry["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def _message(choice: ResultChoice) -> dict:
    calls = choice.tool_calls
    message = {
        "role": "assistant",
        "content": None if calls else choice.text,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def _choice(index: int, choice: ResultChoice, chat: bool) -> dict:
    if chat:
        body = {"message": _message(choice), "logprobs": choice.chat_logprobs}
    else:
        body = {"text": choice.text, "logprobs": legacy_logprobs(choice)}
    return {"index": index, **body, "finish_reason": choice.finish}


def completion_object(task: dict, *, chat: bool, model: str) -> dict:
    result = TaskResult.from_record(task["result"])
    choices = [_choice(i, c, chat) for i, c in enumerate(result.choices)]
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{task['task_id']}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
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


def streams_whole(body: dict, *, chat: bool) -> bool:
    """A stream that sends each choice whole once it is complete: its logprobs, tool calls or
    several choices are known only then (the text relay carries one choice's text alone)."""
    logprobs = body.get("logprobs") if chat else body.get("logprobs") is not None
    tools = bool(body.get("tools")) and body.get("tool_choice") != "none"
    return bool(logprobs) or tools or body.get("n", 1) > 1


def whole_chunks(task: dict, model: str, *, chat: bool) -> list[dict]:
    """Each choice of a finished task as two chunks: its content (or tool calls) with its
    logprobs, then its finish_reason."""
    chunks = []
    for index, choice in enumerate(TaskResult.from_record(task["result"]).choices):
        chunks += [_first_chunk(index, choice, chat), _last_chunk(index, choice, chat)]
    return [_chunk_object(task["task_id"], model, chat, c) for c in chunks]


def _first_chunk(index: int, choice: ResultChoice, chat: bool) -> dict:
    if not chat:
        text, logprobs = choice.text, legacy_logprobs(choice)
        return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": None}
    calls = choice.tool_calls
    delta = (
        {"tool_calls": [{"index": k, **call} for k, call in enumerate(calls)]}
        if calls
        else {"content": choice.text}
    )
    delta = {"role": "assistant", **delta}
    return {
        "index": index,
        "delta": delta,
        "logprobs": choice.chat_logprobs,
        "finish_reason": None,
    }


def _last_chunk(index: int, choice: ResultChoice, chat: bool) -> dict:
    body = {"delta": {}} if chat else {"text": ""}
    return {"index": index, **body, "logprobs": None, "finish_reason": choice.finish}


def _chunk_object(task_id: str, model: str, chat: bool, choice: dict) -> dict:
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{task_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }


def model_ids() -> list[str]:
    """The ids /v1/models lists: each valid local model's name, `local/<name>` and alias."""
    ids = []
    for info in catalog_list():
        if info.valid:
            ids += [info.name, f"local/{info.name}"] + ([info.alias] if info.alias else [])
    return ids


def model_object(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "sop-llm"}


def models_list() -> dict:
    return {"object": "list", "data": [model_object(i) for i in model_ids()]}


def model_retrieve(model_id: str) -> dict:
    """One model of the list, by id (UnknownModel for any other)."""
    if model_id not in model_ids():
        raise UnknownModel(f"The model '{model_id}' does not exist")
    return model_object(model_id)
