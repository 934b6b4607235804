"""A validated chat or completions request -> its task, created after subscribing to its
events (no token is missed), then answered whole or streamed.

A non-streaming client that disconnects leaves its task running, like the native API (see
README); a streaming one cancels it (stream.py)."""

import redis
from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse

from tasks.openai.errors import REDIS_LOST, create_error, failure_status, openai_error
from tasks.openai.serving.objects import completion_object
from tasks.openai.serving.stream import WAIT_SECONDS, sse_stream
from tasks.openai.serving.translate import streams_whole, task_data
from tasks.serializers import TaskCreateSerializer, idempotency_key_for
from tasks.services import new_task_id, task_create
from tasks.status import TaskStatus
from tasks.store import FINAL
from tasks.waiting import TaskEvents, wait_for_task


def _create(request, body: dict, *, chat: bool, task_id: str) -> dict:
    serializer = TaskCreateSerializer(data=task_data(body, chat=chat))
    serializer.is_valid(raise_exception=True)
    return task_create(
        data=serializer.validated_data,
        idempotency_key=idempotency_key_for(
            request, serializer.validated_data.get("idempotency_key")
        ),
        owner=request.user.id,
        limits=request.user.limits,
        task_id=task_id,
    )[0]


async def completion_answer(request, body: dict, *, chat: bool):
    task_id, stream = new_task_id(), body.get("stream", False)
    whole = stream and streams_whole(body, chat=chat)  # no text relay: each choice at its end
    events = TaskEvents(task_id, tokens=stream and not whole)
    try:
        await events.__aenter__()  # subscribe before the task exists: no token is missed
        # Not thread-sensitive: a pooled thread, not one started for this request.
        task = await sync_to_async(_create, thread_sensitive=False)(
            request, body, chat=chat, task_id=task_id
        )
    except Exception as exc:
        await events.__aexit__(None, None, None)
        return create_error(exc, body)
    created = task["task_id"] == task_id
    if not created:  # an idempotent replay: follow the task that exists
        await events.__aexit__(None, None, None)
        events = TaskEvents(task["task_id"], tokens=stream and not whole)
        await events.__aenter__()
    if stream:
        response = _streaming(events, task, body, chat=chat, whole=whole)
    else:
        response = await _wait(events, task, body["model"], chat, created=created)
    response["X-SOP-Task-Id"] = task["task_id"]
    return response


def _streaming(events: TaskEvents, task: dict, body: dict, *, chat: bool, whole: bool):
    include_usage = (body.get("stream_options") or {}).get("include_usage", False)
    response = StreamingHttpResponse(
        sse_stream(events, task, body["model"], chat, include_usage, whole),
        content_type="text/event-stream",
    )
    response["Cache-Control"], response["X-Accel-Buffering"] = "no-cache", "no"
    return response


async def _wait(events: TaskEvents, task: dict, model: str, chat: bool, *, created: bool):
    """A Redis blip is ridden out (waiting.wait_for_task); a longer loss is a 503 that the
    SDKs must not retry (`x-should-retry: false`): the task runs on, and names its id.
    `created`: this request created the task after subscribing, so it knows it as written."""
    task_id = task["task_id"]
    try:
        current = await wait_for_task(
            task_id, WAIT_SECONDS, events, known=task if created else None
        )
    except (redis.RedisError, OSError):
        current = None
    if current is None:
        message = REDIS_LOST.format(id=task_id)
        response = openai_error(
            503, message, type_="server_error", code="redis_unavailable", task_id=task_id
        )
        response["x-should-retry"] = "false"
        return response
    return final_response(current, model, chat)


def final_response(task: dict, model: str, chat: bool):
    if task["status"] == TaskStatus.COMPLETED:
        return JsonResponse(completion_object(task, chat=chat, model=model))
    if task["status"] not in FINAL:
        return openai_error(
            504,
            "the task did not finish in time; follow it by its id",
            type_="timeout",
            code="timeout",
            task_id=task["task_id"],
        )
    error = task.get("error") or {}
    status, type_ = failure_status(error.get("code"))
    return openai_error(
        status,
        error.get("message", "failed"),
        type_=type_,
        code=error.get("code"),
        task_id=task["task_id"],
    )
