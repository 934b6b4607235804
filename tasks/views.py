from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.serializers import TaskCreateSerializer
from tasks.services import task_cancel, task_create, task_get, task_report
from tasks.webhooks import dead_letters, dead_letters_replay, webhook_redeliver


class TaskViewSet(viewsets.ViewSet):
    """Create a task (202), read it, read its full report, cancel it."""

    lookup_value_regex = "[^/]+"

    def get_serializer(self, *args, **kwargs):  # for the browsable API's form
        return TaskCreateSerializer(*args, **kwargs)

    def create(self, request):
        serializer = TaskCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key") or serializer.validated_data.get(
            "idempotency_key"
        )
        task, created = task_create(
            data=serializer.validated_data, idempotency_key=key, client_id=request.user.id
        )
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        headers = {"Location": f"/api/v1/tasks/{task['task_id']}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return Response(task, status=code, headers=headers)

    def retrieve(self, request, pk: str):
        return Response(task_get(task_id=pk))

    @action(detail=True, methods=["get"])
    def report(self, request, pk: str):
        return Response(task_report(task_id=pk))

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str):
        return Response(task_cancel(task_id=pk))

    @action(detail=True, methods=["post"], url_path="webhook/redeliver")
    def redeliver(self, request, pk: str):
        return Response(webhook_redeliver(task_id=pk), status=status.HTTP_202_ACCEPTED)


class DeadLetterList(APIView):
    """Webhook deliveries that used up their retries, newest first."""

    def get(self, request):
        return Response({"dead_letters": dead_letters()})


class DeadLetterReplay(APIView):
    """Replay dead deliveries: all of them, or one task's (`{"task_id": ...}`)."""

    def post(self, request):
        task_id = request.data.get("task_id") if isinstance(request.data, dict) else None
        return Response(dead_letters_replay(task_id=task_id), status=status.HTTP_202_ACCEPTED)
