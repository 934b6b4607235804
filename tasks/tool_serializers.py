"""Tool calling fields of a task, in OpenAI's shapes: `tools`, `tool_choice`,
`parallel_tool_calls`, and the tool turns of `messages`."""

import json

import jsonschema
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sop_llm.core.strict import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictRegexField,
    StrictSerializer,
)

MAX_TOOLS = 128
TOOL_TYPES = ["function"]
NAME = r"^[A-Za-z0-9_-]{1,64}$"
# A speaker's name (OpenAI's pattern, bounded): written into local prompts as "name: ...", so
# no whitespace, control characters or the markup characters of chat templates.
SPEAKER = r"^[^\s<|\\/>\x00-\x1f\x7f]{1,64}$"


class FunctionSerializer(StrictSerializer):
    name = StrictRegexField(NAME)
    description = StrictCharField(required=False, allow_blank=True, max_length=4096)
    parameters = serializers.DictField(required=False)
    strict = StrictBooleanField(required=False, allow_null=True)

    def validate_parameters(self, value: dict) -> dict:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise serializers.ValidationError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class ToolSerializer(StrictSerializer):
    type = StrictChoiceField(choices=TOOL_TYPES)
    function = FunctionSerializer()


class NamedChoiceSerializer(StrictSerializer):
    name = StrictRegexField(NAME)


class ToolChoiceSerializer(StrictSerializer):
    type = StrictChoiceField(choices=TOOL_TYPES)
    function = NamedChoiceSerializer()


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": ["none", "auto", "required"]},
            {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": TOOL_TYPES},
                    "function": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        ]
    }
)
class ToolChoiceField(serializers.Field):
    """none | auto | required, or {type: function, function: {name}}."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            if data not in ("none", "auto", "required"):
                raise serializers.ValidationError("must be none, auto, required or a function")
            return data
        choice = ToolChoiceSerializer(data=data)
        if not choice.is_valid():
            raise serializers.ValidationError(choice.errors)
        return choice.validated_data

    def to_representation(self, value):
        return value


class CallFunctionSerializer(StrictSerializer):
    name = StrictRegexField(NAME)
    arguments = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=1_000_000)

    def validate_arguments(self, value: str) -> str:
        try:
            json.loads(value or "{}")
        except ValueError:
            raise serializers.ValidationError("must be a JSON text (a string)") from None
        return value


class ToolCallSerializer(StrictSerializer):
    """An assistant turn's call, as the model (or OpenAI) wrote it."""

    id = StrictCharField(max_length=256)
    type = StrictChoiceField(choices=TOOL_TYPES)
    function = CallFunctionSerializer()


def check_tools(data: dict, *, exclusive: bool) -> None:
    """tool_choice and parallel_tool_calls need tools; a named choice names one of them;
    tools need messages (chat); `exclusive`: tools or a structured format, not both."""
    tools, choice = data.get("tools"), data.get("tool_choice")
    for field in ("tool_choice", "parallel_tool_calls"):
        if data.get(field) is not None and not tools and choice != "none":
            raise serializers.ValidationError({field: "needs tools"})
    if tools and "messages" not in data:
        raise serializers.ValidationError({"tools": "needs messages (a chat), not a prompt"})
    names = [t["function"]["name"] for t in tools or []]
    if len(set(names)) != len(names):
        raise serializers.ValidationError({"tools": "two tools have the same name"})
    if isinstance(choice, dict) and choice["function"]["name"] not in names:
        raise serializers.ValidationError({"tool_choice": "names no tool of tools"})
    if exclusive and tools and data["response_format"]["type"] != "text" and choice != "none":
        raise serializers.ValidationError(
            {
                "response_format": "anthropic takes tools or a structured format, and local "
                "tools or a GBNF grammar; give one"
            }
        )


class MessageSerializer(StrictSerializer):
    role = StrictChoiceField(choices=["system", "user", "assistant", "tool"])
    content = StrictCharField(
        allow_blank=True, trim_whitespace=False, allow_null=True, required=False
    )
    tool_calls = ToolCallSerializer(many=True, required=False, max_length=MAX_TOOLS)
    tool_call_id = StrictCharField(required=False, max_length=256)
    name = StrictRegexField(
        SPEAKER,
        required=False,
        error_messages={"invalid": "1 to 64 characters, no whitespace and none of <|\\/>"},
    )

    def validate(self, data: dict) -> dict:
        if data.get("name") and data["role"] == "tool":
            raise serializers.ValidationError(
                {"name": "a tool message has no name: its tool_call_id names the call"}
            )
        if data.get("tool_calls") and data["role"] != "assistant":
            raise serializers.ValidationError({"tool_calls": "only an assistant turn has calls"})
        if data.get("tool_call_id") and data["role"] != "tool":
            raise serializers.ValidationError({"tool_call_id": "only a tool message answers one"})
        if data["role"] == "tool" and not data.get("tool_call_id"):
            raise serializers.ValidationError(
                {"tool_call_id": "required: a tool message answers one call of the history"}
            )
        if data.get("content") is None:
            if not data.get("tool_calls"):
                raise serializers.ValidationError({"content": "required (null only with calls)"})
            data["content"] = ""
        return data
