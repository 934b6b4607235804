"""What each provider takes in a task's `options`, checked strictly at submit.

A provider names its serializer as `options_serializer`; the remote ones share these.
"""

import re

from rest_framework import serializers

from sop_llm.core.strict import StrictCharField, StrictChoiceField, StrictSerializer, StrictURLField

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # an RFC 9110 token


class HeadersField(serializers.DictField):
    """Extra HTTP headers for a provider: valid names, values without CR/LF/NUL."""

    child = StrictCharField(max_length=8192, allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data) -> dict:
        headers = super().to_internal_value(data)
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise serializers.ValidationError({name: "not a valid HTTP header name"})
            if any(c in value for c in "\r\n\0"):
                raise serializers.ValidationError({name: "must not hold CR, LF or NUL"})
        return headers


class KeyOptions(StrictSerializer):
    """What every remote provider takes: a key of the caller's, extra headers (both sealed)."""

    api_key = StrictCharField(required=False, max_length=4096, trim_whitespace=False)
    headers = HeadersField(required=False)


class AnthropicOptions(KeyOptions):
    base_url = StrictURLField(required=False, max_length=2048)


class CustomOptions(KeyOptions):
    url = StrictURLField(max_length=2048)
    method = StrictChoiceField(choices=["POST", "PUT", "GET"], required=False)
    body_template = serializers.JSONField(required=False)
    response_path = StrictCharField(required=False, max_length=256)
    prompt_tokens_path = StrictCharField(required=False, max_length=256)
    completion_tokens_path = StrictCharField(required=False, max_length=256)
    finish_reason_path = StrictCharField(required=False, max_length=256)
