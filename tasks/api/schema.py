"""Response shapes of the Tasks API, for the OpenAPI schema (the presenters build them)."""

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

from sop_llm.core.lanes import TASK_LANES
from tasks.store import FINAL

FINISH = "stop | length | tool_calls (the answer is its calls) | cancelled (the text so far)"
LOGPROBS = "[{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], when asked for"
TOOL_CALLS = "[{id, type: function, function: {name, arguments}}]: the answer is these calls"


class ResultChoiceSerializer(serializers.Serializer):
    """One of n answers (tasks.result.ResultChoice)."""

    text = serializers.CharField()
    finish_reason = serializers.CharField(help_text=FINISH)
    logprobs = serializers.ListField(
        child=serializers.DictField(), required=False, help_text=LOGPROBS
    )
    tool_calls = serializers.ListField(
        child=serializers.DictField(), required=False, help_text=TOOL_CALLS
    )


class ResultSerializer(ResultChoiceSerializer):
    """What TaskResult.public() returns: the answer (its first choice) and the whole's fields."""

    parsed = serializers.JSONField(
        allow_null=True,
        required=False,
        help_text="the parsed JSON, when structured; absent from a failed or cancelled task's "
        "text so far",
    )
    enforcement = serializers.ChoiceField(
        choices=["grammar", "provider_strict", "validated"], required=False
    )
    validation = serializers.CharField(required=False, help_text="passed | truncated")
    choices = ResultChoiceSerializer(
        many=True, required=False, help_text="n > 1: every choice, the first being the answer"
    )


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class TaskErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class TargetNameSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()


class QueueEstimateSerializer(serializers.Serializer):
    position = serializers.IntegerField(allow_null=True)
    estimated_start_at = serializers.FloatField(allow_null=True, help_text="epoch seconds")
    recent_avg_ms = serializers.FloatField(allow_null=True)


class WebhookStateSerializer(serializers.Serializer):
    url = serializers.URLField()
    state = serializers.ChoiceField(choices=["pending", "delivering", "delivered", "failed"])
    attempts = serializers.IntegerField()


class TaskSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "processing", *FINAL])
    lane = serializers.ChoiceField(choices=TASK_LANES)
    provider = serializers.CharField(help_text="the provider that answered (or was asked)")
    model = serializers.CharField()
    requested = TargetNameSerializer()
    priority = serializers.IntegerField()
    result = ResultSerializer(allow_null=True)
    usage = UsageSerializer(allow_null=True)
    error = TaskErrorSerializer(allow_null=True)
    metadata = serializers.DictField(allow_null=True)
    webhook = WebhookStateSerializer(allow_null=True)
    queue = QueueEstimateSerializer(required=False, help_text="while queued")
    cancel_requested = serializers.BooleanField(required=False)
    created_at = serializers.DateTimeField()
    queued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    deadline_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class AttemptSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    try_number = serializers.IntegerField()
    started_at = serializers.FloatField()
    duration_ms = serializers.FloatField()
    outcome = serializers.ChoiceField(
        choices=["ok", "error", "killed", "preempted"],
        help_text="killed: its worker died running it; preempted: a more urgent task took its "
        "slot (the next run resumed from its checkpoint)",
    )
    error_code = serializers.CharField(allow_null=True)
    error_class = serializers.ChoiceField(choices=["retryable", "final"], allow_null=True)
    message = serializers.CharField(allow_null=True)
    prompt_tokens = serializers.IntegerField(required=False, allow_null=True)
    completion_tokens = serializers.IntegerField(required=False, allow_null=True)
    generation_ms = serializers.FloatField(required=False, allow_null=True)


class ChargedSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    generation_ms = serializers.FloatField()
    attempts = serializers.IntegerField()


class TimelineEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    event = serializers.CharField(
        help_text="created, dequeued, attempt, model, requeued, preempted (by, tokens, offset), "
        "resumed (tokens: the token it went on from), completed, ..."
    )


class TimingsSerializer(serializers.Serializer):
    """Empty until the task has run."""

    queue_wait_ms = serializers.FloatField(required=False)
    total_ms = serializers.FloatField(required=False)
    load_ms = serializers.FloatField(required=False)
    hot_path = serializers.BooleanField(allow_null=True, required=False)
    generation_ms = serializers.FloatField(required=False)
    tokens_per_second = serializers.FloatField(allow_null=True, required=False)
    first_token_ms = serializers.FloatField(required=False, allow_null=True)
    resumed_tokens = serializers.IntegerField(
        required=False,
        help_text="tokens kept from an earlier run's checkpoint, not generated again",
    )


class WebhookAttemptSerializer(serializers.Serializer):
    attempt = serializers.IntegerField()
    at = serializers.FloatField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    ok = serializers.BooleanField()
    retryable = serializers.BooleanField()
    duration_ms = serializers.FloatField()


class LogRecordSerializer(serializers.Serializer):
    at = serializers.FloatField()
    level = serializers.CharField()
    logger = serializers.CharField()
    message = serializers.CharField()
    task_id = serializers.CharField(allow_null=True)


class ReproSerializer(serializers.Serializer):
    provider = serializers.CharField()
    model = serializers.CharField()
    params = serializers.DictField()
    seed = serializers.IntegerField(allow_null=True)
    seed_used = serializers.IntegerField(required=False)
    response_format_hash = serializers.CharField(allow_null=True)
    gguf_sha256 = serializers.CharField(required=False)
    load_params = serializers.DictField(required=False)


class TaskReportSerializer(TaskSerializer):
    request = serializers.DictField(help_text="the request, secrets redacted")
    attempts = AttemptSerializer(many=True)
    charged = ChargedSerializer(
        allow_null=True,
        help_text="what every attempt cost (failed, truncated, cancelled, killed ones too): "
        "what tokens_per_day and usage count",
    )
    timings = TimingsSerializer()
    reproducibility = ReproSerializer(allow_null=True)
    timeline = TimelineEventSerializer(many=True)
    webhook_deliveries = WebhookAttemptSerializer(many=True)
    crash_count = serializers.IntegerField()
    preemptions = serializers.IntegerField(
        help_text="times a more urgent task took its GPU slot (at most MAX_PREEMPTIONS)"
    )
    worker = serializers.CharField(allow_null=True)
    logs = LogRecordSerializer(many=True)


class DeadLetterSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    delivery_id = serializers.CharField()
    at = serializers.FloatField()
    last = WebhookAttemptSerializer()


class DeadLetterListSerializer(serializers.Serializer):
    dead_letters = DeadLetterSerializer(many=True)


class ReplayedSerializer(serializers.Serializer):
    replayed = serializers.ListField(child=serializers.CharField())


class RedeliverSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    state = serializers.CharField()


CREATE_EXAMPLES = [
    OpenApiExample(
        "local model",
        request_only=True,
        value={
            "provider": "local",
            "model": "gemma",
            "prompt": "The three primary colours are",
            "params": {"max_tokens": 32, "temperature": 0, "seed": 42},
        },
    ),
    OpenApiExample(
        "remote, structured, with a fallback",
        request_only=True,
        value={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Name a city and its country."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {
                        "type": "object",
                        "required": ["city", "country"],
                        "additionalProperties": False,
                        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                    },
                },
            },
            "fallback": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
            "priority": 5,
            "idempotency_key": "order-123",
        },
    ),
    OpenApiExample(
        "accepted",
        response_only=True,
        status_codes=["202"],
        value={
            "task_id": "9f1c2d3e4b5a69788796a5b4c3d2e1f0",
            "status": "queued",
            "lane": "gpu",
            "provider": "local",
            "model": "gemma",
            "priority": 0,
            "queue": {"position": 1, "estimated_start_at": None, "recent_avg_ms": None},
        },
    ),
]
