"""OpenAPI: our API-key authentication, and the one error shape, described for drf-spectacular."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sop_llm.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>`: a managed key (`sk-sop-…`, "
            "from /api/v1/keys) or one of SOP_LLM_API_KEYS (admin). Each route needs a scope "
            "(tasks, monitor, models, admin); a key without it gets a 403 naming it.",
        }


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable, machine-readable, e.g. `invalid`")
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True, help_text="dotted path of the bad field")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def errors(*statuses: int) -> dict:
    return dict.fromkeys(statuses, ErrorSerializer)
