import datetime as dt

from rest_framework import serializers

from sop_llm.access.principals import SCOPES, Limits
from sop_llm.core.strict import (
    StrictChoiceField,
    StrictIntegerField,
    StrictRegexField,
    StrictSerializer,
    wrong_type,
)

PRIORITY_MIN, PRIORITY_MAX = -100, 100  # tasks' own range (tasks.queue)
KEY_STATES = ["active", "expired", "revoked"]


class LimitsSerializer(StrictSerializer):
    rpm = StrictIntegerField(min_value=1, required=False, allow_null=True)
    tokens_per_day = StrictIntegerField(min_value=1, required=False, allow_null=True)
    max_queued = StrictIntegerField(min_value=1, required=False, allow_null=True)
    max_priority = StrictIntegerField(
        min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, required=False, allow_null=True
    )


class ScopesField(serializers.ListField):
    child = StrictChoiceField(choices=SCOPES)

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=len(SCOPES), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise wrong_type("an array of scopes", data)
        return super().to_internal_value(data)


class ExpiryField(serializers.DateTimeField):
    """An ISO 8601 time (UTC when it names no zone), as epoch seconds."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=dt.UTC, **kwargs)

    def to_internal_value(self, value) -> float:
        if not isinstance(value, str):
            raise wrong_type("an ISO 8601 date-time string", value)
        return super().to_internal_value(value).timestamp()


class KeyCreateSerializer(StrictSerializer):
    name = StrictRegexField(
        r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        error_messages={"invalid": "letters, digits, '.', '_' and '-' (1-64, a letter first)"},
    )
    scopes = ScopesField()
    expires_at = ExpiryField(required=False, allow_null=True)
    limits = LimitsSerializer(required=False)

    def validate(self, data: dict) -> dict:
        if "limits" in data:
            data["limits"] = Limits(**data["limits"])
        return data


class KeyUpdateSerializer(KeyCreateSerializer):
    """PATCH: any of the fields; limits replace the key's limits whole."""


class KeySerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    limits = LimitsSerializer()
    state = serializers.ChoiceField(choices=KEY_STATES)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class CreatedKeySerializer(KeySerializer):
    key = serializers.CharField(help_text="the key itself: shown this once, never again")


class KeyListSerializer(serializers.Serializer):
    keys = KeySerializer(many=True)


class UsageQuery(StrictSerializer):
    days = serializers.IntegerField(min_value=1, max_value=31, default=7)  # a query string
    key = serializers.CharField(required=False, max_length=64)
    model = serializers.CharField(required=False, max_length=200)

    def to_internal_value(self, data):
        # `?days=` would quietly mean the default: a parameter given empty is refused.
        for name, value in data.items():
            if value == "":
                raise serializers.ValidationError({name: ["may not be empty"]})
        return super().to_internal_value(data)


class KeyUsageRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    key_id = serializers.CharField()
    key_name = serializers.CharField()
    model = serializers.CharField()
    tasks = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    generation_seconds = serializers.FloatField()


class KeyUsageSerializer(serializers.Serializer):
    usage = KeyUsageRowSerializer(many=True)
