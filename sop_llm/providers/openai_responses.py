"""OpenAI's Responses API wire format: a task made by our `/v1/responses` door goes to the
`openai` provider's own `/responses`, not to its chat form (the other providers get chat)."""

import time

from grammars.preflight import strict_compatible
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.http import bad_response, post_json
from sop_llm.providers.types import GenerateRequest, GenerateResult, Message, Usage


def _items(message: Message) -> list[dict]:
    if message.role == "tool":
        output = {"call_id": message.tool_call_id, "output": message.content}
        return [{"type": "function_call_output", **output}]
    items = [{"role": message.role, "content": message.content}] if message.content else []
    for call in message.tool_calls or []:
        function = call["function"]
        items.append(
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": function["name"],
                "arguments": function["arguments"],
            }
        )
    return items


def _text_format(request: GenerateRequest) -> dict | None:
    rf = request.response_format
    if rf.type == "json_object":
        return {"type": "json_object"}
    if rf.type != "json_schema":
        return None
    strict = rf.strict and strict_compatible(rf.schema)  # OpenAI's strict subset only
    return {"type": "json_schema", "name": rf.schema_name, "schema": rf.schema, "strict": strict}


def _tool_choice(choice):
    if isinstance(choice, dict):
        return {"type": "function", "name": choice["function"]["name"]}
    return choice


def responses_body(request: GenerateRequest) -> dict:
    messages = request.messages or [Message("user", request.prompt or "")]
    system = [m.content for m in messages if m.role == "system"]
    p = request.params
    body: dict = {
        "model": request.model,
        "input": [item for m in messages if m.role != "system" for item in _items(m)],
        "max_output_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "store": False,  # kept here, in Redis, not at OpenAI
    }
    if system:
        body["instructions"] = "\n\n".join(system)
    if request.user:
        body["safety_identifier"] = request.user
    if request.tools:
        body["tools"] = [{"type": "function", **t["function"]} for t in request.tools]
        body["tool_choice"] = _tool_choice(request.tool_choice)
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if fmt := _text_format(request):
        body["text"] = {"format": fmt}
    return body


def _calls(output: list[dict]) -> list[dict] | None:
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item.get("type") == "function_call"
    ]
    return calls or None


def _text(output: list[dict]) -> str:
    messages = [item for item in output if item.get("type") == "message"]
    parts = [part for item in messages for part in item["content"]]
    return "".join(p["text"] for p in parts if p.get("type") == "output_text")


def parse_response(data, *, provider: str, model: str, elapsed_ms: float) -> GenerateResult:
    if isinstance(data, dict) and data.get("status") == "failed":
        message = (data.get("error") or {}).get("message", "failed")
        raise ProviderError(
            f"{provider} ({model}) failed: {message}",
            code="provider_failed",
            retryable=False,
            provider=provider,
            model=model,
        )
    try:
        output, usage = data["output"], data.get("usage") or {}
        text, calls = _text(output), _calls(output)
    except (KeyError, TypeError) as exc:
        raise bad_response(provider, model, str(exc)) from None
    cut = data.get("status") == "incomplete"
    return GenerateResult(
        text=text,
        finish_reason="tool_calls" if calls else ("length" if cut else "stop"),
        usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)),
        provider=provider,
        model=data.get("model") or model,
        response_id=data.get("id"),
        timings={"generation_ms": round(elapsed_ms, 1)},
        tool_calls=calls,
    )


def responses_complete(
    request: GenerateRequest, *, url: str, headers: dict[str, str], provider: str
) -> GenerateResult:
    started = time.perf_counter()
    data = post_json(
        url,
        responses_body(request),
        headers=headers,
        timeout=request.timeout_seconds,
        provider=provider,
        model=request.model,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    return parse_response(data, provider=provider, model=request.model, elapsed_ms=elapsed_ms)
