"""The OpenAI routes' request and response shapes, for the OpenAPI schema (the views are plain
Django views: `sop_llm.core.schema.documented` shows them). Types only where the routes check them,
so a body this schema calls invalid is one the route refuses; fields.py says what each field
does per provider."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

TAGS = ["openai"]


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
)
class ContentField(serializers.JSONField):
    """A string, or text parts."""


class OpenAIMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "developer", "user", "assistant", "tool"])
    content = ContentField(required=False, allow_null=True, help_text="null beside tool_calls")
    name = serializers.CharField(required=False, help_text="the speaker (not on tool messages)")
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)
    tool_call_id = serializers.CharField(required=False, help_text="what a tool message answers")


class _SamplingFields(serializers.Serializer):
    """The fields both routes take (each may be null: absent)."""

    model = serializers.CharField(help_text="`provider/model`, or a local name or alias")
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    temperature = serializers.FloatField(required=False, allow_null=True)
    top_p = serializers.FloatField(required=False, allow_null=True)
    seed = serializers.IntegerField(required=False, allow_null=True)
    stop = serializers.JSONField(required=False, help_text="a string or up to 8 strings")
    n = serializers.IntegerField(required=False, allow_null=True, help_text="1 to 8")
    stream = serializers.BooleanField(required=False, allow_null=True)
    stream_options = serializers.DictField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_null=True, max_length=256)
    priority = serializers.IntegerField(required=False, allow_null=True, help_text="ours")
    fallbacks = serializers.ListField(required=False, allow_null=True, help_text="ours")
    metadata = serializers.DictField(required=False, allow_null=True)


class ChatCompletionCreateSerializer(_SamplingFields):
    messages = OpenAIMessageSerializer(many=True)
    max_completion_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    response_format = serializers.DictField(required=False, allow_null=True)
    tools = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True)
    tool_choice = serializers.JSONField(required=False, help_text="none, auto, required, named")
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    logprobs = serializers.BooleanField(required=False, allow_null=True)
    top_logprobs = serializers.IntegerField(required=False, allow_null=True)


class CompletionCreateSerializer(_SamplingFields):
    prompt = serializers.JSONField(help_text="a string, or a list of one")
    logprobs = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=5)


class OpenAIUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class ChatCompletionMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(allow_null=True)
    refusal = serializers.CharField(allow_null=True)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)


class ChatCompletionChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message = ChatCompletionMessageSerializer()
    logprobs = serializers.DictField(allow_null=True)
    finish_reason = serializers.CharField(help_text="stop | length | tool_calls")


class CompletionChoiceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    text = serializers.CharField()
    logprobs = serializers.DictField(allow_null=True)
    finish_reason = serializers.CharField()


class _CompletionFields(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(help_text="chat.completion or text_completion")
    created = serializers.IntegerField()
    model = serializers.CharField()
    usage = OpenAIUsageSerializer()
    system_fingerprint = serializers.CharField(allow_null=True)


class ChatCompletionSerializer(_CompletionFields):
    choices = ChatCompletionChoiceSerializer(many=True)


class CompletionSerializer(_CompletionFields):
    choices = CompletionChoiceSerializer(many=True)


class OpenAIModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(help_text="model")
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class OpenAIModelListSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="list")
    data = OpenAIModelSerializer(many=True)


class OpenAIErrorBodySerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True, help_text="the field, as the caller named it")
    code = serializers.CharField(allow_null=True)


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorBodySerializer()


def errors(*statuses: int) -> dict:
    """OpenAI's error shape for these statuses, and for 401 and 403 (every route takes a key)."""
    return dict.fromkeys(sorted({401, 403, *statuses}), OpenAIErrorSerializer)


SSE = OpenApiResponse(
    OpenApiTypes.STR, description="with stream: true, text/event-stream chunks ending [DONE]"
)
CREATE_ERRORS = errors(400, 401, 404, 429, 499, 502, 503, 504)


def completion(request, answer, summary: str) -> dict:
    return {
        "summary": summary,
        "tags": TAGS,
        "request": request,
        "responses": {
            (200, "application/json"): answer,
            (200, "text/event-stream"): SSE,
            **CREATE_ERRORS,
        },
        "description": "Each request is an ordinary task; `X-SOP-Task-Id` names it. With "
        "`stream: true` the answer is server-sent events.",
    }


CHAT = completion(
    ChatCompletionCreateSerializer, ChatCompletionSerializer, "OpenAI Chat Completions"
)
COMPLETIONS = completion(CompletionCreateSerializer, CompletionSerializer, "OpenAI Completions")
MODELS = {
    "summary": "The local models",
    "tags": TAGS,
    "operation_id": "v1_models_list",
    "responses": {200: OpenAIModelListSerializer},
}
MODEL = {
    "summary": "One model of the list",
    "tags": TAGS,
    "responses": {200: OpenAIModelSerializer, **errors(401, 404)},
}
