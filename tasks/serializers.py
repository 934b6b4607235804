"""Input validation for tasks: every bad field is a 400 that names it."""

import jsonschema
from django.conf import settings
from rest_framework import serializers

from grammars.formats import named_grammars
from sop_llm.netguard import UnsafeURL, check_url
from sop_llm.providers import REGISTRY
from sop_llm.providers.openai_compatible import PRESETS
from tasks.queue import PRIORITY_MAX, PRIORITY_MIN
from tasks.structured_checks import check_enforceable

MAX_MESSAGES = 1000
MAX_FALLBACKS = 5


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant", "tool"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ParamsSerializer(serializers.Serializer):
    max_tokens = serializers.IntegerField(min_value=1, default=256)
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, default=0.7)
    top_p = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.95)
    top_k = serializers.IntegerField(min_value=0, max_value=1000, default=40)
    stop = serializers.ListField(
        child=serializers.CharField(max_length=64, trim_whitespace=False),
        max_length=8,
        default=list,
    )
    seed = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True, default=None
    )
    repeat_penalty = serializers.FloatField(min_value=0.0, max_value=2.0, default=1.1)
    presence_penalty = serializers.FloatField(min_value=-2.0, max_value=2.0, default=0.0)
    frequency_penalty = serializers.FloatField(min_value=-2.0, max_value=2.0, default=0.0)

    def validate_max_tokens(self, value: int) -> int:
        if value > settings.MAX_TOKENS_LIMIT:
            raise serializers.ValidationError(
                f"must be at most {settings.MAX_TOKENS_LIMIT} (MAX_TOKENS_LIMIT)"
            )
        return value


class JsonSchemaSpecSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$", default="answer")
    schema = serializers.DictField()
    strict = serializers.BooleanField(default=True)

    def validate_schema(self, value: dict) -> dict:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise serializers.ValidationError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class ResponseFormatSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text", "json_object", "json_schema", "grammar"])
    json_schema = JsonSchemaSpecSerializer(required=False)
    grammar = serializers.CharField(required=False, max_length=100_000, trim_whitespace=False)
    name = serializers.CharField(required=False, max_length=64)

    def validate(self, data: dict) -> dict:
        kind = data["type"]
        if kind == "json_schema" and "json_schema" not in data:
            raise serializers.ValidationError({"json_schema": "required when type is json_schema"})
        if kind == "grammar":
            if bool(data.get("grammar")) == bool(data.get("name")):
                raise serializers.ValidationError(
                    {"grammar": "give exactly one of grammar (inline GBNF) or name"}
                )
            if data.get("name") and data["name"] not in named_grammars():
                known = ", ".join(named_grammars())
                raise serializers.ValidationError({"name": f"unknown grammar; known: {known}"})
        return data


class TargetSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=sorted(REGISTRY))
    model = serializers.CharField(max_length=256)
    options = serializers.DictField(required=False, default=dict)


class TaskCreateSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=sorted(REGISTRY))
    model = serializers.CharField(max_length=256)
    messages = MessageSerializer(many=True, required=False, max_length=MAX_MESSAGES)
    prompt = serializers.CharField(required=False, trim_whitespace=False)
    params = ParamsSerializer(required=False)
    response_format = ResponseFormatSerializer(required=False)
    options = serializers.DictField(required=False, default=dict)
    fallback = TargetSerializer(many=True, required=False, max_length=MAX_FALLBACKS)
    webhook_url = serializers.URLField(required=False, max_length=2048)
    idempotency_key = serializers.CharField(required=False, max_length=200)
    priority = serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, default=0)
    deadline_seconds = serializers.IntegerField(min_value=1, max_value=7 * 86400, required=False)
    timeout_seconds = serializers.IntegerField(min_value=1, required=False)
    metadata = serializers.DictField(required=False)
    wait = serializers.IntegerField(
        min_value=0,
        max_value=300,
        required=False,
        help_text="seconds to hold the response until the task finishes (or Prefer: wait=N)",
    )

    def validate_webhook_url(self, value: str) -> str:
        try:
            check_url(value, what="webhook_url")
        except UnsafeURL as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not settings.WEBHOOK_SECRET:
            raise serializers.ValidationError("webhooks need WEBHOOK_SECRET set on the service")
        return value

    def validate_timeout_seconds(self, value: int) -> int:
        if value > settings.TASK_MAX_TIMEOUT_SECONDS:
            raise serializers.ValidationError(
                f"must be at most {settings.TASK_MAX_TIMEOUT_SECONDS} (TASK_MAX_TIMEOUT_SECONDS)"
            )
        return value

    def validate(self, data: dict) -> dict:
        if ("messages" in data) == ("prompt" in data):
            raise serializers.ValidationError(
                {"messages": "give exactly one of messages or prompt"}
            )
        if "messages" in data and not data["messages"]:
            raise serializers.ValidationError({"messages": "must not be empty"})
        data.setdefault("params", ParamsSerializer().to_internal_value({}))
        data.setdefault("response_format", {"type": "text"})
        data.setdefault("timeout_seconds", settings.TASK_DEFAULT_TIMEOUT_SECONDS)
        _validate_options(data["provider"], data["model"], data.get("options") or {}, "options")
        if data["provider"] == "local":
            from models_gpu.catalog import catalog_resolve

            data["model_key"] = catalog_resolve(data["model"]).name
        for index, target in enumerate(data.get("fallback") or []):
            where = f"fallback.{index}.options"
            _validate_options(target["provider"], target["model"], target["options"], where)
        check_enforceable(data)
        if (
            any(t["provider"] == "local" for t in data.get("fallback") or [])
            and data["provider"] != "local"
        ):
            raise serializers.ValidationError(
                {"fallback": "a local fallback needs a local primary (the GPU lane runs it)"}
            )
        return data


def _validate_options(provider: str, model: str, options: dict, where: str) -> None:
    """Each provider's own options, checked at submit time instead of failing in the worker."""
    headers = options.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise serializers.ValidationError({where: "headers must be an object of strings"})
    if provider == "openai_compatible":
        preset = options.get("preset")
        if preset is not None and preset not in PRESETS:
            raise serializers.ValidationError(
                {where: f"unknown preset {preset!r}; known: {', '.join(PRESETS)}"}
            )
        if options.get("base_url"):
            _check(options["base_url"], f"{where}.base_url")
    if provider == "custom":
        if not options.get("url"):
            raise serializers.ValidationError({f"{where}.url": "required for the custom provider"})
        _check(options["url"], f"{where}.url")
        if options.get("method", "POST") not in ("POST", "PUT", "GET"):
            raise serializers.ValidationError({f"{where}.method": "must be POST, PUT or GET"})
    if provider == "local":
        from models_gpu.catalog import catalog_resolve

        try:
            catalog_resolve(model)
        except LookupError as exc:
            raise serializers.ValidationError({"model": str(exc)}) from None


def _check(url: str, where: str) -> None:
    try:
        check_url(url, what=where)
    except UnsafeURL as exc:
        raise serializers.ValidationError({where: str(exc)}) from None
