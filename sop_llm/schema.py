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


def document_scope_refusals(result, generator, request, public):
    """Every route that takes a key may answer 403 (the key lacks the route's scope): say so
    once here rather than in each view's responses."""
    forbidden = {
        "description": "the API key lacks the route's scope (the message names it)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "401" in operation.get("responses", {}):
                operation["responses"].setdefault("403", forbidden)
    return result
