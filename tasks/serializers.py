"""Input validation for tasks: every bad field is a 400 that names it.

Strict all the way down (sop_llm.core.strict): exact JSON types, no unknown keys, and each
provider's `options` checked by its own serializer, so nothing malformed reaches a worker."""

import jsonschema
from django.conf import settings
from rest_framework import serializers

from grammars.formats import named_grammars
from sop_llm.core.errors import ServiceError
from sop_llm.core.strict import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictRegexField,
    StrictSerializer,
    StrictURLField,
)
from sop_llm.providers import REGISTRY, get_provider
from sop_llm.providers.structured import method_of
from sop_llm.providers.support import given_features, unsupported
from sop_llm.providers.types import MAX_TOP_LOGPROBS
from tasks.logit_bias import LogitBiasField
from tasks.queue import PRIORITY_MAX, PRIORITY_MIN
from tasks.structured_checks import check_enforceable
from tasks.tool_serializers import (
    MAX_TOOLS,
    MessageSerializer,
    ToolChoiceField,
    ToolSerializer,
    check_tools,
)

MAX_MESSAGES = 1000
MAX_FALLBACKS = 5
MAX_CHOICES = 8
IDEMPOTENCY_KEY_MAX = 200  # the body field and the Idempotency-Key header alike


class ParamsSerializer(StrictSerializer):
    max_tokens = StrictIntegerField(min_value=1, default=256)
    temperature = StrictFloatField(min_value=0.0, max_value=2.0, default=0.7)
    top_p = StrictFloatField(min_value=0.0, max_value=1.0, default=0.95)
    top_k = StrictIntegerField(min_value=0, max_value=1000, default=40)
    stop = serializers.ListField(
        child=StrictCharField(max_length=64, trim_whitespace=False),
        max_length=8,
        default=list,
    )
    seed = StrictIntegerField(
        min_value=0, max_value=2**31 - 1, required=False, allow_null=True, default=None
    )
    repeat_penalty = StrictFloatField(min_value=0.0, max_value=2.0, default=1.1)
    presence_penalty = StrictFloatField(min_value=-2.0, max_value=2.0, default=0.0)
    frequency_penalty = StrictFloatField(min_value=-2.0, max_value=2.0, default=0.0)
    logprobs = StrictBooleanField(
        default=False, help_text="the answer's token log-probabilities in result.logprobs"
    )
    top_logprobs = StrictIntegerField(min_value=0, max_value=MAX_TOP_LOGPROBS, default=0)
    n = StrictIntegerField(min_value=1, max_value=MAX_CHOICES, default=1, help_text="choices")
    logit_bias = LogitBiasField(help_text="token id -> -100..100 added to its logit (local)")

    def validate(self, data: dict) -> dict:
        if data.get("top_logprobs") and not data.get("logprobs"):
            raise serializers.ValidationError({"top_logprobs": "needs logprobs: true"})
        return data

    def to_internal_value(self, data) -> dict:
        values = super().to_internal_value(data)
        values["given"] = sorted(data)  # support checks look at what the caller asked for
        return values

    def validate_max_tokens(self, value: int) -> int:
        if value > settings.MAX_TOKENS_LIMIT:
            raise serializers.ValidationError(
                f"must be at most {settings.MAX_TOKENS_LIMIT} (MAX_TOKENS_LIMIT)"
            )
        return value


class JsonSchemaSpecSerializer(StrictSerializer):
    name = StrictRegexField(r"^[A-Za-z0-9_-]{1,64}$", default="answer")
    description = StrictCharField(required=False, allow_blank=True, max_length=4096)
    schema = serializers.DictField()
    strict = StrictBooleanField(default=True)

    def validate_schema(self, value: dict) -> dict:
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.SchemaError as exc:
            raise serializers.ValidationError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class ResponseFormatSerializer(StrictSerializer):
    type = StrictChoiceField(choices=["text", "json_object", "json_schema", "grammar"])
    json_schema = JsonSchemaSpecSerializer(required=False)
    grammar = StrictCharField(required=False, max_length=100_000, trim_whitespace=False)
    name = StrictCharField(required=False, max_length=64)
    # {"type": "json_object", "schema": {...}}: the older form of json_schema that
    # llama-cpp-python's server, vLLM and Together take (instructor <= 1.3 sends it).
    schema = serializers.DictField(required=False)

    def validate(self, data: dict) -> dict:
        if "schema" in data:
            data = _schema_as_json_schema(data)
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


def _schema_as_json_schema(data: dict) -> dict:
    if data["type"] != "json_object":
        raise serializers.ValidationError({"schema": "only with type json_object"})
    spec = JsonSchemaSpecSerializer(data={"schema": data["schema"]})
    if not spec.is_valid():
        raise serializers.ValidationError(spec.errors)
    return {"type": "json_schema", "json_schema": dict(spec.validated_data)}


class TargetSerializer(StrictSerializer):
    """A provider/model pair with that provider's options (the task itself, or a fallback)."""

    provider = StrictChoiceField(choices=sorted(REGISTRY))
    model = StrictCharField(max_length=256)
    options = serializers.DictField(required=False, default=dict)

    def validate(self, data: dict) -> dict:
        # Errors raised here are relative to this target, so a fallback's read fallback.N.model.
        provider = get_provider(data["provider"])
        options = provider.options_serializer(data=data.get("options") or {})
        if not options.is_valid():
            raise serializers.ValidationError({"options": options.errors})
        data["options"] = dict(options.validated_data)
        resolve = getattr(provider, "resolve_model", None)  # a catalog name behind an alias
        if resolve is not None:
            try:
                data["model_key"] = resolve(data["model"])
            except LookupError as exc:
                raise serializers.ValidationError({"model": str(exc)}) from None
        return data


class TaskCreateSerializer(TargetSerializer):
    messages = MessageSerializer(many=True, required=False, max_length=MAX_MESSAGES)
    prompt = StrictCharField(required=False, trim_whitespace=False)
    params = ParamsSerializer(required=False)
    response_format = ResponseFormatSerializer(required=False)
    fallback = TargetSerializer(many=True, required=False, max_length=MAX_FALLBACKS)
    webhook_url = StrictURLField(required=False, max_length=2048)
    idempotency_key = StrictCharField(required=False, max_length=IDEMPOTENCY_KEY_MAX)
    priority = StrictIntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, default=0)
    deadline_seconds = StrictIntegerField(min_value=1, max_value=7 * 86400, required=False)
    timeout_seconds = StrictIntegerField(min_value=1, required=False)
    metadata = serializers.DictField(required=False)
    user = StrictCharField(
        required=False, max_length=256, help_text="your end user's id, passed where supported"
    )
    tools = ToolSerializer(many=True, required=False, max_length=MAX_TOOLS)
    tool_choice = ToolChoiceField(required=False)
    parallel_tool_calls = StrictBooleanField(required=False)
    on_max_tokens = StrictChoiceField(
        choices=["fail", "return"],
        required=False,
        help_text="a structured answer cut by max_tokens: fail the attempt (fallbacks take "
        "over) or return the text so far with finish_reason length (what /v1 does)",
    )
    wait = StrictIntegerField(
        min_value=0,
        max_value=300,
        required=False,
        help_text="seconds to hold the response until the task finishes (or Prefer: wait=N)",
    )

    def validate_webhook_url(self, value: str) -> str:
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
        data = super().validate(data)
        if "params" not in data:  # built only when needed: a serializer costs ~1 ms to build
            data["params"] = ParamsSerializer().to_internal_value({})
        data.setdefault("response_format", {"type": "text"})
        data.setdefault("timeout_seconds", settings.TASK_DEFAULT_TIMEOUT_SECONDS)
        check_enforceable(data)
        check_tools(data, exclusive=_tools_exclude_formats(data))
        _check_supported(data)
        _check_fits_a_slot(data)
        _check_logit_bias_ids(data)
        if any(_needs_gpu(t) for t in data.get("fallback") or []) and not _needs_gpu(data):
            raise serializers.ValidationError(
                {"fallback": "a local fallback needs a local primary (the GPU lane runs it)"}
            )
        return data


def _check_supported(data: dict) -> None:
    """Every field the task gives is honoured by its provider and by each fallback."""
    features = given_features(data, data["params"].get("given", ()))
    targets = [(data["provider"], data)] + [
        (f"fallback {i} ({t['provider']})", t) for i, t in enumerate(data.get("fallback") or [])
    ]
    for who, target in targets:
        missing = unsupported(get_provider(target["provider"]), features, target["options"])
        if missing:
            raise serializers.ValidationError(
                {missing[0]: f"{who} does not support it; leave it out or pick another provider"}
            )


def _tools_exclude_formats(data: dict) -> bool:
    """A target that enforces structured output with a forced tool call (anthropic) takes tools
    or a structured format, not both; a grammar target (local) takes tools beside a JSON format
    (its grammar allows a call or the format), not beside a GBNF grammar."""
    methods = {method_of(t["provider"]) for t in [data, *(data.get("fallback") or [])]}
    gbnf = data["response_format"]["type"] == "grammar"
    return bool(methods & {"tool_use"}) or ("grammar" in methods and gbnf)


def _needs_gpu(target: dict) -> bool:
    return get_provider(target["provider"]).capabilities.needs_gpu


def _check_logit_bias_ids(data: dict) -> None:
    """logit_bias ids within the local model's vocabulary (its file's header knows the size)."""
    bias = data["params"].get("logit_bias")
    if not bias or not _needs_gpu(data):
        return
    from models_gpu.catalog import catalog_resolve

    n_vocab = catalog_resolve(data["model"]).n_vocab
    outside = sorted(int(k) for k in bias if n_vocab and int(k) >= n_vocab)
    if outside:
        raise serializers.ValidationError(
            {
                "params.logit_bias": f"token id {outside[0]} is past the model's vocabulary "
                f"(0 to {n_vocab - 1})"
            }
        )


def _check_fits_a_slot(data: dict) -> None:
    """A local answer must fit one batch slot's context (n_ctx / GPU_SLOTS) with its prompt:
    refuse at submit what cannot, naming the numbers (the prompt's own tokens are counted by
    the worker, which refuses the rest with `context_length`)."""
    if not _needs_gpu(data):
        return
    from models_gpu.catalog import catalog_resolve
    from models_gpu.provider import load_params_for

    load = load_params_for(catalog_resolve(data["model"]), data["options"].get("load"))
    room, asked = load.n_ctx // settings.GPU_SLOTS, data["params"]["max_tokens"]
    if asked >= room:
        raise serializers.ValidationError(
            {
                "params.max_tokens": f"{asked} tokens cannot fit a batch slot: each holds {room} "
                f"tokens, prompt included (n_ctx {load.n_ctx} / GPU_SLOTS "
                f"{settings.GPU_SLOTS}); ask for fewer or load a larger options.load.n_ctx"
            }
        )


class ReplaySerializer(StrictSerializer):
    """POST webhooks/dead-letters/replay: all dead deliveries, or one task's."""

    task_id = StrictCharField(required=False, max_length=64)


def header_values(request, name: str) -> list[str]:
    """Every value of a header as sent. Under ASGI a repeated header is still apart in the scope
    (Django's META joins them with commas, which a value may hold itself)."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and "headers" in scope:
        wanted = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == wanted]
    value = request.headers.get(name)
    return [] if value is None else [value]


def _bad_key(message: str) -> ServiceError:
    return ServiceError(message, code="invalid", status=400, field="Idempotency-Key")


def idempotency_key_for(request, body_key: str | None) -> str | None:
    """The Idempotency-Key header (checked like the body field) or the body's idempotency_key;
    both given and different is ambiguous, so refused like a repeated, differing header."""
    values = set(header_values(request, "Idempotency-Key"))
    if len(values) > 1:
        raise _bad_key("the header is repeated with different values; send it once")
    header = values.pop() if values else None
    if header is None:
        return body_key
    if not header.strip() or len(header) > IDEMPOTENCY_KEY_MAX:
        raise _bad_key(f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters")
    if body_key is not None and body_key != header:
        raise _bad_key("differs from the body's idempotency_key; send one of them")
    return header
