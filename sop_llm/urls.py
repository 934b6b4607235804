from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from monitor import views as monitor_views
from sop_llm import views
from sop_llm.access.auth import api_key_required
from sop_llm.access.principals import ANY_KEY

handler404 = "sop_llm.core.errors.handler404"


handler500 = "sop_llm.core.errors.handler500"


class ApiRoot(APIView):
    """SOP LLM: a dumb executor for LLM inference. Every call needs an API key."""

    required_scope = ANY_KEY

    @extend_schema(exclude=True)
    def get(self, request):
        def url(name: str) -> str:
            return reverse(name, request=request)

        return Response(
            {
                "tasks": url("tasks-list"),
                "models": url("models-list"),
                "models_status": url("models-status"),
                "grammars": url("grammars-list"),
                "monitor_status": url("monitor-status"),
                "monitor_queue": url("monitor-queue"),
                "monitor_logs": url("monitor-logs"),
                "monitor_stats": url("monitor-stats"),
                "dashboard": url("dashboard"),  # the pages for people
                "docs": url("docs"),
                "schema": url("schema"),
                "openai_models": url("openai-models"),
                "keys": url("keys-list"),
                "usage": url("usage"),
            }
        )


class Schema(SpectacularJSONAPIView):
    required_scope = ANY_KEY


class Docs(SpectacularSwaggerSplitView):
    """Swagger UI with its init script as a file (`?script`), not inline: the page's CSP."""

    required_scope = ANY_KEY


urlpatterns = [
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("signin/", views.signin, name="signin"),
    path("signout/", views.signout, name="signout"),
    path("api/v1/", ApiRoot.as_view(), name="api-root"),
    path("api/schema/", Schema.as_view(), name="schema"),
    path(
        "api/docs/",
        api_key_required(Docs.as_view(url_name="schema"), scope=ANY_KEY, pages=True),
        name="docs",
    ),
    path("api/v1/", include("tasks.api.urls")),
    path("api/v1/", include("models_gpu.urls")),
    path("api/v1/", include("tasks.api.grammar_urls")),
    path("api/v1/", include("monitor.urls")),
    path("api/v1/", include("sop_llm.access.apikeys.urls")),
    path("metrics", monitor_views.metrics, name="metrics"),
    path("", include("tasks.openai.urls")),
    path("", include("tasks.batches.urls")),  # Files, Batches, Message Batches
    path("", include("tasks.anthropic_api.urls")),
    path("", include("tasks.responses.urls")),
    path("monitor/", monitor_views.dashboard, name="dashboard"),
]
