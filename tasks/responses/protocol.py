"""The `POST /v1/responses` body under OpenAI's names, and its translation to the chat body
the task machinery already takes (tasks.openai.serving.translate.task_data).

Strict like chat: exact types, no unknown keys; a field of OpenAI's reference we do not
implement is a 400 naming it (only its no-op value passes; see fields.py)."""

from typing import Any

from rest_framework import serializers

from sop_llm.core.strict import (
    NotYet,
    PassThrough,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
)
from tasks.responses.items import input_items

NOT_YET = {
    "access_programs": (),
    "background_options": (),
    "context_management": (),
    "conversation": (),
    "image": (),
    "include": ([],),
    "max_tool_calls": (),
    "moderation": (),
    "prompt": (),
    "prompt_cache_key": (),
    "prompt_cache_options": (),
    "prompt_cache_retention": (),
    "reasoning": (),
    "service_tier": ("auto", "default"),
    "top_logprobs": (0,),
    "truncation": ("disabled",),
}
# Handed to the chat body unchanged (checked by the task serializer there).
PASSED = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "priority",
    "webhook_url",
    "idempotency_key",
    "timeout_seconds",
    "deadline_seconds",
    "seed",
    "top_k",
    "fallback",
    "fallbacks",
    "user",
    "safety_identifier",
)


class InputField(serializers.Field):
    def to_internal_value(self, data: Any) -> list[dict]:
        return input_items(data)

    def to_representation(self, value: Any) -> Any:
        return value


class FunctionTool(StrictSerializer):
    type = StrictChoiceField(
        choices=["function"],
        error_messages={"invalid_choice": "only function tools are supported yet"},
    )
    name = StrictCharField(max_length=64)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    parameters = PassThrough()
    strict = StrictBooleanField(required=False, allow_null=True)


class ToolChoiceField(serializers.Field):
    """none / auto / required, or {"type": "function", "name": ...}."""

    def to_internal_value(self, data: Any) -> Any:
        if data in ("none", "auto", "required"):
            return data
        if (
            isinstance(data, dict)
            and data.get("type") == "function"
            and set(data) == {"type", "name"}
        ) and isinstance(data["name"], str):
            return {"type": "function", "function": {"name": data["name"]}}
        raise serializers.ValidationError('none, auto, required or {"type": "function", "name"}')

    def to_representation(self, value: Any) -> Any:
        return value


class Format(StrictSerializer):
    type = StrictChoiceField(choices=["text", "json_object", "json_schema"])
    name = StrictCharField(required=False, max_length=64)
    schema = PassThrough()
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    strict = StrictBooleanField(required=False, allow_null=True)

    def validate(self, data: dict) -> dict:
        if data["type"] == "json_schema" and not data.get("name"):
            raise serializers.ValidationError({"name": "json_schema needs a name"})
        if data["type"] == "json_schema" and data.get("schema") is None:
            raise serializers.ValidationError({"schema": "json_schema needs a schema"})
        return data


class TextConfig(StrictSerializer):
    format = Format(required=False)
    verbosity = NotYet((None, "medium"))


class StreamOptions(StrictSerializer):
    include_obfuscation = NotYet((False,))


class ResponseRequest(StrictSerializer):
    model = StrictCharField(max_length=300)
    input = InputField()
    instructions = StrictCharField(required=False, allow_null=True, allow_blank=True)
    max_output_tokens = PassThrough()
    tools = FunctionTool(many=True, required=False)
    tool_choice = ToolChoiceField(required=False)
    text = TextConfig(required=False, allow_null=True)
    stream = StrictBooleanField(required=False, allow_null=True)
    stream_options = StreamOptions(required=False, allow_null=True)
    background = StrictBooleanField(required=False, allow_null=True)
    store = StrictBooleanField(required=False, allow_null=True)
    previous_response_id = StrictCharField(required=False, allow_null=True, max_length=80)

    def get_fields(self) -> dict:
        fields = {**super().get_fields(), **{name: PassThrough() for name in PASSED}}
        return {**fields, **{name: NotYet(noop) for name, noop in NOT_YET.items()}}

    def validate(self, data: dict) -> dict:
        if data.get("background") and data.get("store") is False:
            raise serializers.ValidationError({"background": "needs store: true"})
        if data.get("stream_options") and not data.get("stream"):
            raise serializers.ValidationError({"stream_options": "only with stream: true"})
        if data.get("tool_choice") and not data.get("tools"):
            raise serializers.ValidationError({"tool_choice": "needs tools"})
        return data


def response_request(body: dict) -> dict:
    """The validated body, nulls dropped (ValidationError names OpenAI's field)."""
    serializer = ResponseRequest(data=body)
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if v is not None}


def _chat_tool(tool: dict) -> dict:
    function = {
        k: tool[k]
        for k in ("name", "description", "parameters", "strict")
        if tool.get(k) is not None
    }
    return {"type": "function", "function": function}


def response_format(text: dict | None) -> dict | None:
    spec = dict((text or {}).get("format") or {})
    if spec.get("type") != "json_schema":
        return spec or None
    inner = {
        k: spec[k] for k in ("name", "schema", "description", "strict") if spec.get(k) is not None
    }
    return {"type": "json_schema", "json_schema": inner}


def chat_body(request: dict, messages: list[dict]) -> dict:
    """A validated Responses request (and its messages, the chain's included) -> the chat
    completions body task_data takes."""
    body: dict = {"model": request["model"], "messages": messages}
    body.update({k: request[k] for k in PASSED if k in request})
    if "max_output_tokens" in request:
        body["max_tokens"] = request["max_output_tokens"]
    if request.get("tools"):
        body["tools"] = [_chat_tool(t) for t in request["tools"]]
    if "tool_choice" in request:
        body["tool_choice"] = request["tool_choice"]
    if fmt := response_format(request.get("text")):
        body["response_format"] = fmt
    return body


def response_param(field: str | None) -> str | None:
    """A chat/task field path (as openai_param names it) -> the Responses name."""
    if not field:
        return field
    head, _, rest = field.partition(".")
    renamed = {
        "max_tokens": "max_output_tokens",
        "messages": "input",
        "response_format": "text.format",
    }
    if head == "tools" and ".function." in f".{rest}.":
        rest = rest.replace("function.", "", 1)
    if head == "response_format" and rest.startswith("json_schema"):
        rest = rest.removeprefix("json_schema").lstrip(".")
    if head == "messages":
        return "input"  # a message of the chain, not one index of this request's items
    return ".".join(p for p in (renamed.get(head, head), rest) if p)
