from django.http import HttpResponseRedirect
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from monitor import views as monitor_views
from sop_llm import views
from sop_llm.auth import bearer_token, cookie_key, key_is_valid

handler404 = "sop_llm.errors.handler404"


def signed_in(view):
    """Pages for people: without a key (header or sign-in cookie), go to the sign-in page."""

    def wrapper(request, *args, **kwargs):
        key = bearer_token(request.headers.get("Authorization")) or cookie_key(request)
        if not key_is_valid(key):
            return HttpResponseRedirect(f"/signin/?next={request.path}")
        return view(request, *args, **kwargs)

    return wrapper


handler500 = "sop_llm.errors.handler500"


class ApiRoot(APIView):
    """SOP LLM: a dumb executor for LLM inference. Every call needs an API key."""

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
            }
        )


urlpatterns = [
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("signin/", views.signin, name="signin"),
    path("signout/", views.signout, name="signout"),
    path("api/v1/", ApiRoot.as_view(), name="api-root"),
    path("api/schema/", SpectacularJSONAPIView.as_view(), name="schema"),
    path("api/docs/", signed_in(SpectacularSwaggerView.as_view(url_name="schema")), name="docs"),
    path("api/v1/", include("tasks.urls")),
    path("api/v1/", include("models_gpu.urls")),
    path("api/v1/", include("grammars.urls")),
    path("api/v1/", include("monitor.urls")),
    path("metrics", monitor_views.metrics, name="metrics"),
    path("", include("tasks.openai_compat.urls")),
    path("monitor/", monitor_views.dashboard, name="dashboard"),
]
