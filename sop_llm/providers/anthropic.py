"""Anthropic Messages API through the official SDK (its own retries off: ours own retries)."""

import json
import time

from django.conf import settings

from sop_llm.core.backoff import parse_retry_after
from sop_llm.providers.errors import (
    ProviderError,
    error_for_status,
    missing_key,
)
from sop_llm.providers.options import AnthropicOptions
from sop_llm.providers.types import (
    GenerateRequest,
    GenerateResult,
    ProviderCapabilities,
    Usage,
)

_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "stop"}


class AnthropicProvider:
    name = "anthropic"
    options_serializer = AnthropicOptions
    capabilities = ProviderCapabilities(chat=True, structured_output="tool_use")
    # No sampling settings, seed, penalties or logprobs in the Messages API; n > 1 is n requests.
    honours = frozenset(
        {
            "params.stop",
            "params.max_tokens",
            "params.n",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "user",
        }
    )

    def generate(self, request: GenerateRequest) -> GenerateResult:
        """n > 1: the Messages API answers once a request, so n requests, one after another."""
        results = [self._generate(request) for _ in range(request.params.n)]
        first = results[0]
        if len(results) > 1:
            first.choices = results[1:]
            first.usage.completion_tokens = sum(r.usage.completion_tokens for r in results)
        return first

    def _generate(self, request: GenerateRequest) -> GenerateResult:
        import anthropic  # the web process never needs the SDK

        client = anthropic.Anthropic(
            api_key=self._key(request),
            base_url=request.options.get("base_url") or settings.ANTHROPIC_BASE_URL,
            max_retries=0,
            timeout=request.timeout_seconds,
            default_headers=request.options.get("headers") or None,
        )
        started = time.perf_counter()
        try:
            message = client.messages.create(**self.body(request))
        except anthropic.APIError as exc:
            raise self._error(exc, request.model) from None
        finally:
            client.close()
        return self._result(message, request, (time.perf_counter() - started) * 1000)

    def _key(self, request: GenerateRequest) -> str:
        key = request.options.get("api_key") or settings.ANTHROPIC_API_KEY
        if not key:
            raise missing_key(self.name, request.model, "ANTHROPIC_API_KEY")
        return key

    @staticmethod
    def body(request: GenerateRequest) -> dict:
        """Messages API body: system prompts go to `system`, the rest stay in order."""
        p = request.params
        messages = request.messages or []
        system = "\n\n".join(m.spoken for m in messages if m.role == "system")
        turns = [_turn(m) for m in messages if m.role != "system"]
        if request.prompt is not None:
            turns = [{"role": "user", "content": request.prompt}]
        body: dict = {"model": request.model, "messages": turns, "max_tokens": p.max_tokens}
        # The Messages API of SDK 2.x takes no temperature/top_p/top_k (current models fix their
        # own sampling): a task that sets them is refused at submit (see `honours`).
        if system:
            body["system"] = system
        if p.stop:
            body["stop_sequences"] = list(p.stop)
        if request.user:
            body["metadata"] = {"user_id": request.user}
        if request.tools:
            body.update(_tools(request))
        rf = request.response_format
        if rf.structured:
            # Forced tool use: the tool's input schema is the answer's schema.
            schema = rf.schema if rf.type == "json_schema" else {"type": "object"}
            body["tools"] = [
                {
                    "name": rf.schema_name,
                    "description": rf.description or "Return the answer.",
                    "input_schema": schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": rf.schema_name}
        return body

    def _result(self, message, request: GenerateRequest, elapsed_ms: float) -> GenerateResult:
        text, parsed, calls = "", None, []
        for block in message.content:
            if block.type == "tool_use" and request.tools:
                calls.append(_call(block))
            elif block.type == "tool_use":
                parsed = block.input
                text = json.dumps(block.input, ensure_ascii=False)
            elif block.type == "text":
                text += block.text
        finish = _FINISH.get(message.stop_reason or "", message.stop_reason or "stop")
        return GenerateResult(
            text=text,
            finish_reason="tool_calls" if calls else finish,
            tool_calls=calls or None,
            usage=Usage(message.usage.input_tokens, message.usage.output_tokens),
            provider=self.name,
            model=message.model or request.model,
            response_id=message.id,
            parsed=parsed,
            timings={"generation_ms": round(elapsed_ms, 1)},
        )

    def _error(self, exc, model: str) -> ProviderError:
        import anthropic

        where = f"anthropic ({model})"
        if isinstance(exc, anthropic.APITimeoutError):
            return ProviderError(
                f"{where} timed out",
                code="timeout",
                retryable=True,
                provider=self.name,
                model=model,
            )
        if isinstance(exc, anthropic.APIConnectionError):
            return ProviderError(
                f"{where} could not be reached",
                code="connection",
                retryable=True,
                provider=self.name,
                model=model,
            )
        if isinstance(exc, anthropic.APIStatusError):
            error = error_for_status(
                exc.status_code,
                _detail(exc),
                provider=self.name,
                model=model,
                retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
            )
            if "SpendLimit" in type(exc).__name__:  # a 429 that waiting will not lift
                error.code, error.retryable = "spend_limit", False
            return error
        return ProviderError(
            f"{where}: {type(exc).__name__}", code="bad_response", provider=self.name, model=model
        )


def _detail(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('type')}: {error.get('message')}"
    return str(getattr(exc, "message", exc))[:500]


def _turn(message) -> dict:
    """A chat message as a Messages API turn: calls as tool_use blocks, tool results as a user
    turn's tool_result block (Anthropic joins consecutive turns of one role)."""
    if message.role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
        return {"role": "user", "content": [{**result, "content": message.content}]}
    if not message.tool_calls:
        return {"role": message.role, "content": message.spoken}
    blocks = [{"type": "text", "text": message.spoken}] if message.content else []
    for call in message.tool_calls:
        function = call["function"]
        arguments = json.loads(function["arguments"] or "{}")
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
        )
    return {"role": "assistant", "content": blocks}


def _tools(request: GenerateRequest) -> dict:
    tools = [
        {
            "name": f["name"],
            "description": f.get("description", ""),
            "input_schema": f.get("parameters") or {"type": "object"},
        }
        for f in (t["function"] for t in request.tools)
    ]
    choice = request.tool_choice
    if isinstance(choice, dict):
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    else:
        mapped = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    if not request.parallel_tool_calls and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    return {"tools": tools, "tool_choice": mapped}


def _call(block) -> dict:
    arguments = json.dumps(block.input, ensure_ascii=False)
    return {
        "id": block.id,
        "type": "function",
        "function": {"name": block.name, "arguments": arguments},
    }
