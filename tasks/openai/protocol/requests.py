"""The OpenAI request bodies we take, under OpenAI's own field names.

Strict like the native API: exact types and no unknown keys. A field of OpenAI's reference that
we do not implement (audio, prediction, ...; see fields.py) is a 400 naming it, never silently
ignored: only its no-op value (or null) passes. Sampling parameters, tools, n, logprobs and our
own extensions pass through to the task serializer, so their rules (and which provider honours
which) live in one place; errors found there are renamed back to OpenAI's names by
`openai_param`.
"""

from typing import Any

from rest_framework import serializers

from sop_llm.core.strict import (
    NotYet,
    PassThrough,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
    wrong_type,
)

# The task's sampling params and native fields, taken under the same names (serving's
# translation carries them over).
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
# Passed through to the task serializer as the translation carries them.
PASSED_THROUGH = (*PARAMS, *NATIVE_EXTRAS, "fallback", "fallbacks")
NOT_YET_CHAT = {
    "functions": (),
    "function_call": ("none",),
    "audio": (),
    "modalities": (["text"],),
    "prediction": (),
    "reasoning_effort": (),
    "verbosity": (),
    "web_search_options": (),
    "service_tier": ("auto", "default"),
    "store": (False,),
    "prompt_cache_key": (),
    "prompt_cache_retention": (),
    "prompt_cache_options": (),
    "moderation": (),
}
NOT_YET_COMPLETION = {
    "best_of": (1,),
    "echo": (False,),
    "suffix": ("",),
}
NOT_YET_MESSAGE = ("function_call", "refusal", "audio")
MESSAGE_PASSED = ("tool_calls", "tool_call_id", "name")  # checked by the task serializer


class TextPart(StrictSerializer):
    type = StrictChoiceField(
        choices=["text"],
        error_messages={"invalid_choice": "only text content parts are supported yet"},
    )
    text = StrictCharField(allow_blank=True, trim_whitespace=False)


class ContentField(serializers.Field):
    """A string, or a list of text parts (joined)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if not isinstance(data, list):
            raise wrong_type("a string or an array of content parts", data)
        if not data:  # OpenAI refuses it too: an empty array is no message at all
            raise serializers.ValidationError("an array of content parts must not be empty")
        parts = TextPart(data=data, many=True)
        if not parts.is_valid():
            raise serializers.ValidationError(parts.errors)
        return "".join(part["text"] for part in parts.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value


class ChatMessage(StrictSerializer):
    role = StrictChoiceField(choices=["system", "developer", "user", "assistant", "tool"])
    content = ContentField(required=False, allow_null=True)  # null beside tool_calls

    def get_fields(self) -> dict:
        fields = {**super().get_fields(), **{name: NotYet() for name in NOT_YET_MESSAGE}}
        return {**fields, **{name: PassThrough() for name in MESSAGE_PASSED}}

    def validate_role(self, value: str) -> str:
        return "system" if value == "developer" else value  # the newer name of the same role


class StreamOptions(StrictSerializer):
    include_usage = StrictBooleanField(required=False)
    include_obfuscation = NotYet((False,))


class OpenAIRequest(StrictSerializer):
    model = StrictCharField(max_length=300)
    stream = StrictBooleanField(required=False, allow_null=True)
    stream_options = StreamOptions(required=False, allow_null=True)
    user = StrictCharField(required=False, allow_null=True, max_length=256)
    safety_identifier = StrictCharField(required=False, allow_null=True, max_length=256)
    not_yet: dict = {}

    def validate(self, data: dict) -> dict:
        if data.get("stream_options") and not data.get("stream"):
            raise serializers.ValidationError({"stream_options": "only with stream: true"})
        if data.get("fallback") is not None and data.get("fallbacks") is not None:
            raise serializers.ValidationError({"fallbacks": "give one of fallback or fallbacks"})
        user, safety = data.get("user"), data.get("safety_identifier")
        if None not in (user, safety) and user != safety:
            raise serializers.ValidationError(
                {"safety_identifier": "differs from user (its older name); send one of them"}
            )
        return data

    def get_fields(self) -> dict:
        fields = super().get_fields()
        fields.update({name: PassThrough() for name in PASSED_THROUGH})
        fields.update({name: NotYet(noop) for name, noop in self.not_yet.items()})
        return fields


class ChatRequest(OpenAIRequest):
    messages = ChatMessage(many=True)
    not_yet = NOT_YET_CHAT

    def get_fields(self) -> dict:
        extra = ("max_completion_tokens", "logprobs", "top_logprobs")
        return {**super().get_fields(), **{name: PassThrough() for name in extra}}

    def validate(self, data: dict) -> dict:
        data = super().validate(data)
        both = (data.get("max_tokens"), data.get("max_completion_tokens"))
        if None not in both and both[0] != both[1]:
            raise serializers.ValidationError(
                {"max_tokens": "differs from max_completion_tokens; send one of them"}
            )
        return data


class PromptField(serializers.Field):
    """A string, or a list of exactly one (batches of prompts are not supported yet)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        elif isinstance(data, list):
            raise serializers.ValidationError("give one prompt; batches are not supported yet")
        if not isinstance(data, str):
            raise wrong_type("a string", data)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class CompletionRequest(OpenAIRequest):
    prompt = PromptField()
    # The legacy API's logprobs: how many top tokens beside each answer token (0..5).
    logprobs = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=5)
    not_yet = NOT_YET_COMPLETION


def openai_request(body: dict, *, chat: bool) -> dict:
    """The validated body (ValidationError names OpenAI's field)."""
    serializer = (ChatRequest if chat else CompletionRequest)(data=body)
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if v is not None}


def openai_param(field: str | None, body: dict) -> str | None:
    """A native field path (params.max_tokens, fallback.0.model) -> the name the caller used."""
    if not field:
        return field
    head, _, rest = field.partition(".")
    if head == "params" and rest:
        name, _, tail = rest.partition(".")
        if name == "max_tokens" and "max_completion_tokens" in body:
            name = "max_completion_tokens"
        if name == "top_logprobs" and "top_logprobs" not in body:
            name = "logprobs"  # the legacy API's number of top tokens
        return ".".join(p for p in (name, tail) if p)
    if head == "fallback" and "fallbacks" in body:
        return ".".join(p for p in ("fallbacks", rest) if p)
    if head == "provider":  # the provider comes out of `model` ("openai/gpt-4o")
        return "model"
    if head == "user" and "user" not in body:
        return "safety_identifier"  # its newer name, as the caller sent it
    return field
