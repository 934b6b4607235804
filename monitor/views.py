from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from monitor.schema import (
    LogsSerializer,
    QueueSerializer,
    RqStatsSerializer,
    StatsSerializer,
    StatusSerializer,
)
from monitor.services import (
    metrics_text,
    monitor_logs,
    monitor_queue,
    monitor_stats,
    monitor_status,
)
from sop_llm.access.auth import api_key_required
from sop_llm.core.schema import documented, errors

METRICS = {
    "summary": "Prometheus metrics (text format)",
    "description": "A key with the monitor scope, or METRICS_TOKEN as the bearer token.",
    "tags": ["monitor"],
    "responses": {(200, "text/plain"): OpenApiTypes.STR, **errors(401)},
}


class Status(APIView):
    """Health of everything: Redis, workers per lane, GPU, loaded model, queues, today."""

    required_scope = "monitor"

    @extend_schema(responses={200: StatusSerializer, **errors(401)})
    def get(self, request):
        return Response(monitor_status())


class Queue(APIView):
    """Pending tasks of each lane in run order, and what is processing."""

    required_scope = "monitor"

    @extend_schema(responses={200: QueueSerializer, **errors(401, 503)})
    def get(self, request):
        return Response(monitor_queue())


class LogsQuery(serializers.Serializer):
    task_id = serializers.CharField(required=False, max_length=64)
    level = serializers.ChoiceField(
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], required=False
    )
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class Logs(APIView):
    """Recent logs (newest first), by task and minimum level."""

    required_scope = "monitor"

    @extend_schema(responses={200: LogsSerializer, **errors(400, 401, 503)}, parameters=[LogsQuery])
    def get(self, request):
        query = LogsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(
            monitor_logs(
                task_id=query.validated_data.get("task_id"),
                level=query.validated_data.get("level"),
                limit=query.validated_data["limit"],
            )
        )


class StatsQuery(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=7, default=7)


class Stats(APIView):
    """Daily counters: created/completed/failed/cancelled, tokens, per provider."""

    required_scope = "monitor"

    @extend_schema(
        responses={200: StatsSerializer, **errors(400, 401, 503)}, parameters=[StatsQuery]
    )
    def get(self, request):
        query = StatsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(monitor_stats(days=query.validated_data["days"]))


@documented(get=METRICS)
@api_key_required(scope="monitor", token=lambda: settings.METRICS_TOKEN)
def metrics(request):
    """Prometheus text format. Takes an API key, or METRICS_TOKEN for scrapers."""
    return HttpResponse(metrics_text(), content_type="text/plain; version=0.0.4")


@api_key_required(scope="monitor", pages=True)
def dashboard(request):
    """The live dashboard; signs in through the API-key page (a signed cookie)."""
    return render(request, "monitor/dashboard.html")


class RqStats(APIView):
    """django-rq's own statistics (queues, jobs, workers), behind the service's API key."""

    required_scope = "monitor"

    @extend_schema(responses={200: RqStatsSerializer, **errors(401, 503)})
    def get(self, request):
        from django_rq.utils import get_statistics

        return Response(get_statistics())
