import re

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from sop_llm.core.schema import errors
from tasks.api.schema import (
    CREATE_EXAMPLES,
    DeadLetterListSerializer,
    RedeliverSerializer,
    ReplayedSerializer,
    TaskReportSerializer,
    TaskSerializer,
)
from tasks.serializers import ReplaySerializer, TaskCreateSerializer, idempotency_key_for
from tasks.services import task_cancel, task_create, task_get, task_report
from tasks.store import FINAL
from tasks.waiting import MAX_WAIT_SECONDS, wait_for_task
from tasks.webhooks import dead_letters, dead_letters_replay, webhook_redeliver

FORM_EXAMPLE = CREATE_EXAMPLES[0].value


class TaskViewSet(viewsets.ViewSet):
    """Create a task (202), read it, read its full report, cancel it."""

    lookup_value_regex = "[^/]+"
    required_scope = "tasks"

    def get_serializer(self, *args, **kwargs):
        """For the browsable API's form: prefilled with a valid example, not with every
        field's empty default (both messages and prompt, a blank webhook_url...)."""
        if not args and not kwargs:
            return TaskCreateSerializer(instance=FORM_EXAMPLE)
        return TaskCreateSerializer(*args, **kwargs)

    @extend_schema(exclude=True)  # a page for people following the API root's link
    def list(self, request):
        """Tasks are created here with POST and read by id; they are not listed."""
        return Response(
            {
                "create": "POST /api/v1/tasks (202 with the task_id)",
                "read": "GET /api/v1/tasks/{task_id}, GET /api/v1/tasks/{task_id}/report",
                "example": FORM_EXAMPLE,
            }
        )

    @extend_schema(
        request=TaskCreateSerializer,
        examples=CREATE_EXAMPLES,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="the same key returns the same task (409 if the body differs)",
            ),
            OpenApiParameter(
                "Prefer",
                str,
                OpenApiParameter.HEADER,
                description="`wait=N`: hold the answer up to N seconds (<= 300) "
                "until the task is final",
            ),
        ],
        responses={
            202: TaskSerializer,
            200: TaskSerializer,
            **errors(400, 401, 409, 413, 429, 503),
        },
    )
    def create(self, request):
        serializer = TaskCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = idempotency_key_for(request, serializer.validated_data.get("idempotency_key"))
        task, created = task_create(
            data=serializer.validated_data,
            idempotency_key=key,
            owner=request.user.id,
            limits=request.user.limits,
        )
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        headers = {"Location": f"/api/v1/tasks/{task['task_id']}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        response = Response(task, status=code, headers=headers)
        response.wait_seconds = requested_wait(request, serializer.validated_data.get("wait"))
        return response

    @extend_schema(responses={200: TaskSerializer, **errors(401, 404, 503)})
    def retrieve(self, request, pk: str):
        return Response(task_get(task_id=pk, owner=request.user.owner_filter))

    @extend_schema(responses={200: TaskReportSerializer, **errors(401, 404, 503)})
    @action(detail=True, methods=["get"])
    def report(self, request, pk: str):
        return Response(task_report(task_id=pk, owner=request.user.owner_filter))

    @extend_schema(request=None, responses={200: TaskSerializer, **errors(401, 404, 409, 503)})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str):
        return Response(task_cancel(task_id=pk, owner=request.user.owner_filter))

    @extend_schema(request=None, responses={202: RedeliverSerializer, **errors(401, 404, 409, 503)})
    @action(detail=True, methods=["post"], url_path="webhook/redeliver")
    def redeliver(self, request, pk: str):
        redelivery = webhook_redeliver(task_id=pk, owner=request.user.owner_filter)
        return Response(redelivery, status=status.HTTP_202_ACCEPTED)


_create = TaskViewSet.as_view({"post": "create", "get": "list"})


def requested_wait(request, field: int | None) -> int:
    """`Prefer: wait=N` (RFC 7240) or the body's `wait`; bounded like the field."""
    for preference in request.headers.get("Prefer", "").split(","):
        name, _, value = preference.strip().partition("=")
        # isdigit() is also true for "²", which int() refuses: ASCII digits only.
        if name.strip().lower() == "wait" and re.fullmatch(r"[0-9]{1,6}", value.strip()):
            return min(int(value), MAX_WAIT_SECONDS)
    return field or 0


@csrf_exempt
async def task_create_view(request):
    """POST /api/v1/tasks: create; with a wait, hold the answer until the task is final.

    Async so a waiting client costs a subscription, not a thread. A client that goes away
    while waiting leaves its task running (it has an id and a report); see README."""
    response = await sync_to_async(_create)(request)
    wait = getattr(response, "wait_seconds", 0)
    if not wait or response.status_code not in (200, 202):
        return response
    task = await wait_for_task(response.data["task_id"], wait)
    final = task["status"] in FINAL
    answer = JsonResponse(task, status=200 if final else 202)
    answer["Preference-Applied"] = f"wait={wait}"
    answer["Location"] = response["Location"]
    return answer


# drf-spectacular documents DRF views only: let it see the viewset action behind this wrapper.
task_create_view.cls, task_create_view.initkwargs, task_create_view.actions = (
    _create.cls,
    _create.initkwargs,
    _create.actions,
)


class DeadLetterList(APIView):
    """Webhook deliveries that used up their retries, newest first (every owner's)."""

    required_scope = "admin"

    @extend_schema(responses={200: DeadLetterListSerializer, **errors(401, 503)})
    def get(self, request):
        return Response({"dead_letters": dead_letters()})


class DeadLetterReplay(APIView):
    """Replay dead deliveries: all of them, or one task's (`{"task_id": ...}`)."""

    required_scope = "admin"

    @extend_schema(
        request=ReplaySerializer, responses={202: ReplayedSerializer, **errors(400, 401, 503)}
    )
    def post(self, request):
        serializer = ReplaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task_id = serializer.validated_data.get("task_id")
        return Response(dead_letters_replay(task_id=task_id), status=status.HTTP_202_ACCEPTED)
