"""Answering a Messages request: create its task, then wait for it or stream it.

The stream relays the same token events as the OpenAI door's SSE (tasks.waiting.TaskEvents).
A request with tools streams its blocks whole once the task ends, as the OpenAI door does: a
tool call is known only then."""

import logging

import redis
from django.http import JsonResponse, StreamingHttpResponse
from rest_framework.exceptions import ValidationError

from sop_llm.core.errors import ServiceError, _first_error
from tasks.anthropic_api.blocks import RequestError
from tasks.anthropic_api.errors import anthropic_error, anthropic_error_from, with_field
from tasks.anthropic_api.translate import anthropic_field, message_object, task_data
from tasks.failures import failure_http_status
from tasks.openai.translate import UnknownModel
from tasks.serializers import TaskCreateSerializer, idempotency_key_for
from tasks.services import task_create
from tasks.status import TaskStatus
from tasks.store import FINAL
from tasks.waiting import FINAL_EVENTS, TaskEvents

log = logging.getLogger(__name__)
WAIT_SECONDS = 600
REDIS_LOST = (
    "Redis stopped answering while this request waited; the task goes on (follow it by the "
    "X-SOP-Task-Id header once Redis is back)"
)
# task error code -> HTTP status (the same as the OpenAI door's)


def task_for(request, checked: dict, *, task_id: str) -> dict:
    serializer = TaskCreateSerializer(data=task_data(checked))
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    return task_create(
        data=data,
        idempotency_key=idempotency_key_for(request, data.get("idempotency_key")),
        owner=request.user.id,
        limits=request.user.limits,
        task_id=task_id,
    )[0]


def refusal(exc: Exception) -> JsonResponse:
    """What a request that could not become a task answers."""
    if isinstance(exc, RequestError):
        return anthropic_error(400, with_field(exc.message, exc.field))
    if isinstance(exc, UnknownModel):
        return anthropic_error(404, f"model: {exc}")
    if isinstance(exc, ValidationError):
        field, message = _first_error(exc.detail)
        return anthropic_error(400, with_field(message, anthropic_field(field)))
    if isinstance(exc, ServiceError):
        return anthropic_error_from(exc)
    if isinstance(exc, redis.RedisError):
        return anthropic_error(503, "Redis is unavailable; try again shortly")
    log.exception("Anthropic Messages request failed")
    return anthropic_error(500, "internal error")


async def wait(events: TaskEvents, task: dict, model: str) -> JsonResponse:
    try:
        async with events:
            current = await events.task()
            if current["status"] not in FINAL:
                async for event in events.events(WAIT_SECONDS):
                    if event["type"] in FINAL_EVENTS:
                        break
                current = await events.task()
    except (redis.RedisError, OSError):
        return anthropic_error(503, REDIS_LOST, task_id=task["task_id"])
    return final_response(current, model)


def final_response(task: dict, model: str) -> JsonResponse:
    if task["status"] == TaskStatus.COMPLETED:
        return JsonResponse(message_object(task, model=model))
    status, message = failure(task)
    return anthropic_error(status, message, task_id=task["task_id"])


def failure(task: dict) -> tuple[int, str]:
    """(status, message) of a task that did not complete (or not in time)."""
    if task["status"] not in FINAL:
        return 504, "the task did not finish in time; follow it by its X-SOP-Task-Id"
    error = task.get("error") or {}
    return failure_http_status(error.get("code")), error.get("message", "failed")


def streaming(chunks) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream")
    response["Cache-Control"], response["X-Accel-Buffering"] = "no-cache", "no"
    return response
