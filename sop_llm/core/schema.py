"""OpenAPI: our API-key authentication, the one error shape, and the plain (non-DRF) views,
described for drf-spectacular."""

from collections.abc import Callable

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import EndpointEnumerator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sop_llm.access.auth.ApiKeyAuthentication"
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


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ok")
    version = serializers.CharField()


class ReadySerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ready")
    redis = serializers.CharField(help_text="ok")
    uptime_seconds = serializers.FloatField()


HEALTH = {
    "summary": "Liveness (no key)",
    "tags": ["process"],
    "auth": [],
    "responses": {200: HealthSerializer},
}
READY = {
    "summary": "Readiness: Redis answers",
    "tags": ["process"],
    "responses": {200: ReadySerializer, **errors(401, 503)},
}


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


def documented(**operations: dict) -> Callable:
    """Describe a plain Django view (one DRF does not serve) for the OpenAPI schema: per HTTP
    method (`get=`, `post=`, ...), extend_schema's arguments. drf-spectacular reads DRF views
    only, so `plain_views` shows the route through a stand-in DRF view that serves nothing."""

    def decorate(view):
        handlers = {method: extend_schema(**kw)(_stand_in()) for method, kw in operations.items()}
        stand_in = type(f"{view.__name__}_schema", (APIView,), handlers)
        view.openapi_view = stand_in.as_view()
        return view

    return decorate


def _stand_in():
    def handler(self, request, *args, **kwargs):  # documentation only: never routed
        raise NotImplementedError

    return handler


class _PlainViews(EndpointEnumerator):
    """The routes whose view carries a `documented` description."""

    def should_include_endpoint(self, path, callback) -> bool:
        return hasattr(callback, "openapi_view")

    def get_allowed_methods(self, callback) -> list[str]:
        return super().get_allowed_methods(callback.openapi_view)


def plain_views(endpoints: list) -> list:
    """Preprocessing hook: the documented plain views (the OpenAI routes, /ready, /metrics)
    beside the DRF ones."""
    # The private walk: the public get_api_endpoints would run the hooks, this one included.
    found = _PlainViews()._get_api_endpoints(None, "")
    return endpoints + [(path, regex, method, cb.openapi_view) for path, regex, method, cb in found]
