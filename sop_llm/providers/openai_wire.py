"""OpenAI Chat Completions wire format, shared by `openai` and `openai_compatible`."""

import time

from grammars.preflight import strict_compatible
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.http import bad_response, post_json
from sop_llm.providers.support import FEATURES
from sop_llm.providers.types import GenerateRequest, GenerateResult, Usage

# What Chat Completions takes: every feature but llama.cpp's own two, and logit_bias (token ids
# of one vendor's vocabulary: only the local provider, which knows its model's, honours it).
OPENAI_FIELDS = frozenset(FEATURES) - {"params.top_k", "params.repeat_penalty", "params.logit_bias"}


def chat_body(request: GenerateRequest) -> dict:
    p = request.params
    body: dict = {
        "model": request.model,
        "messages": _messages(request),
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
    }
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if p.presence_penalty:
        body["presence_penalty"] = p.presence_penalty
    if p.frequency_penalty:
        body["frequency_penalty"] = p.frequency_penalty
    if request.user:
        body["user"] = request.user
    if request.tools:
        body["tools"] = request.tools
        body["tool_choice"] = request.tool_choice
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if p.n > 1:
        body["n"] = p.n
    if p.logprobs:
        body["logprobs"] = True
        if p.top_logprobs:
            body["top_logprobs"] = p.top_logprobs
    fmt = _response_format(request)
    if fmt:
        body["response_format"] = fmt
    return body


def _messages(request: GenerateRequest) -> list[dict]:
    if request.messages is not None:
        return [m.to_dict() for m in request.messages]
    return [{"role": "user", "content": request.prompt or ""}]


def _response_format(request: GenerateRequest) -> dict | None:
    rf = request.response_format
    if rf.type == "json_object":
        return {"type": "json_object"}
    if rf.type == "json_schema":
        # strict=true makes OpenAI refuse schemas outside its subset: only ask where it fits.
        strict = rf.strict and strict_compatible(rf.schema)
        schema = {"name": rf.schema_name, "schema": rf.schema, "strict": strict}
        if rf.description:
            schema["description"] = rf.description
        return {"type": "json_schema", "json_schema": schema}
    return None


def enforcement(request: GenerateRequest) -> str:
    rf = request.response_format
    strict = rf.type == "json_schema" and rf.strict and strict_compatible(rf.schema)
    return "provider_strict" if strict else "validated"


def chat_complete(
    request: GenerateRequest,
    *,
    url: str,
    headers: dict[str, str],
    provider: str,
    extra: dict | None = None,
) -> GenerateResult:
    """`extra`: fields of this server's beyond OpenAI's (top_k for openai_compatible)."""
    started = time.perf_counter()
    data = post_json(
        url,
        {**chat_body(request), **(extra or {})},
        headers=headers,
        timeout=request.timeout_seconds,
        provider=provider,
        model=request.model,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    result = parse_chat(data, provider=provider, model=request.model, elapsed_ms=elapsed_ms)
    if request.response_format.structured:
        result.meta["structured"] = {"enforcement": enforcement(request)}
    return result


def parse_chat(data, *, provider: str, model: str, elapsed_ms: float) -> GenerateResult:
    """The first choice, carrying the others (n > 1) in `choices`."""
    try:
        choices = [_choice(c, provider, model) for c in data["choices"]]
        first = choices[0]
    except (KeyError, IndexError, TypeError) as exc:
        raise bad_response(provider, model, str(exc)) from None
    usage = data.get("usage") or {}
    first.usage = Usage(
        int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    )
    first.model, first.response_id = data.get("model") or model, data.get("id")
    first.timings = {"generation_ms": round(elapsed_ms, 1)}
    first.choices = choices[1:]
    return first


def _choice(choice: dict, provider: str, model: str) -> GenerateResult:
    message = choice["message"]
    text = message.get("content")
    if message.get("refusal"):
        raise ProviderError(
            f"{provider} ({model}) refused: {message['refusal']}",
            code="content_refused",
            retryable=False,
            provider=provider,
            model=model,
        )
    calls = _tool_calls(message)
    if text is None and calls:
        text = ""
    if not isinstance(text, str):
        raise TypeError("choices[0].message.content is not a string")
    finish = "tool_calls" if calls else choice.get("finish_reason") or "stop"
    return GenerateResult(
        text=text,
        finish_reason=finish,
        usage=Usage(),
        provider=provider,
        model=model,
        logprobs=_logprobs(choice),
        tool_calls=calls,
    )


def _tool_calls(message: dict) -> list[dict] | None:
    calls = message.get("tool_calls")
    if not calls:
        return None
    if not isinstance(calls, list):
        raise TypeError("choices[0].message.tool_calls is not a list")
    return [
        {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            },
        }
        for call in calls
    ]


def _logprobs(choice: dict) -> list[dict] | None:
    """choices[0].logprobs.content as the server sent it (OpenAI's shape is ours)."""
    content = (choice.get("logprobs") or {}).get("content")
    return content if isinstance(content, list) else None
