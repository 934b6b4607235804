"""Input of /v1/files and /v1/batches under OpenAI's field names; unknown fields are refused."""

from django.conf import settings
from rest_framework import serializers

from sop_llm.core.strict import (
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
    StrictURLField,
)
from tasks.batches.files import LIST_LIMIT_MAX

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")


def valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class FileUpload(StrictSerializer):
    """The multipart form of an upload (its values arrive as strings and files)."""

    purpose = serializers.CharField(max_length=64)
    file = serializers.FileField(allow_empty_file=True, use_url=False)


class ListQuery(StrictSerializer):
    """`after` and `limit` of a listing (query string values are strings)."""

    after = serializers.CharField(required=False, max_length=64)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=LIST_LIMIT_MAX)
    purpose = serializers.CharField(required=False, max_length=64)
    order = serializers.ChoiceField(choices=["desc"], required=False)


class Metadata(serializers.DictField):
    """OpenAI's metadata: at most 16 string pairs (keys up to 64, values up to 512 chars)."""

    child = StrictCharField(max_length=512, allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 16 or any(len(k) > 64 for k in value):
            raise serializers.ValidationError("at most 16 pairs, keys up to 64 characters")
        return value


class BatchCreate(StrictSerializer):
    input_file_id = StrictCharField(max_length=64)
    endpoint = StrictChoiceField(choices=list(ENDPOINTS))
    completion_window = StrictChoiceField(choices=["24h"])
    metadata = Metadata(required=False, allow_null=True)
    webhook_url = StrictURLField(required=False, max_length=2048)  # ours: batch.* events
    output_expires_after = serializers.JSONField(required=False)

    def validate_webhook_url(self, value: str) -> str:
        if not settings.WEBHOOK_SECRET:
            raise serializers.ValidationError("webhooks need WEBHOOK_SECRET set on the service")
        return value

    def validate_output_expires_after(self, value):
        raise serializers.ValidationError(
            "not supported by this service yet: outputs are kept SESSION_TTL_HOURS"
        )
