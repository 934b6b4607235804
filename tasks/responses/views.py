"""`/v1/responses`: thin views over tasks.responses.serving, in OpenAI's error shape."""

import contextlib
import logging

import redis
from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import ValidationError

from sop_llm.core import jsonparse
from sop_llm.core.errors import ServiceError
from tasks import store
from tasks.openai.views import (
    create_error,
    openai_error,
    openai_key_required,
    openai_methods,
)
from tasks.responses import serving
from tasks.responses.objects import response_object
from tasks.responses.protocol import response_param, response_request
from tasks.responses.recorder import recorder_start
from tasks.responses.streaming import sse_stream
from tasks.services import new_task_id, task_cancel
from tasks.waiting import TaskEvents, wait_for_task

log = logging.getLogger(__name__)
WAIT_SECONDS = 300


def error_response(exc: Exception, body: dict):
    return create_error(exc, body, param_name=response_param, what="Responses API")


def _parse(raw: bytes) -> tuple[dict | None, dict | None, JsonResponse | None]:
    """(the raw body, the validated one, None) or (.., None, the 400)."""
    try:
        body = jsonparse.loads(raw or b"{}")
    except jsonparse.BadJSON as exc:
        return (
            None,
            None,
            openai_error(400, f"The body is not valid JSON: {exc}", code="invalid_json"),
        )
    if not isinstance(body, dict):
        return None, None, openai_error(400, "The body is not a JSON object.", code="invalid_json")
    try:
        return body, response_request(body), None
    except ValidationError as exc:
        return body, None, error_response(exc, body)


def _sse_response(task_id: str, record: dict, after: int, on_drop=None):
    response = StreamingHttpResponse(
        sse_stream(task_id, record, after, on_drop), content_type="text/event-stream"
    )
    response["Cache-Control"], response["X-Accel-Buffering"] = "no-cache", "no"
    response["X-SOP-Task-Id"] = task_id
    return response


async def _create(request):
    raw, body, refusal = _parse(request.body)
    if refusal is not None:
        return refusal
    task_id, recording = new_task_id(), bool(body.get("stream") or body.get("background"))
    events = TaskEvents(task_id, tokens=recording)
    try:
        await events.__aenter__()  # before the task exists: no event is missed
        task, record = await sync_to_async(serving.response_create)(
            request=request, body=body, raw=raw, task_id=task_id
        )
    except Exception as exc:
        await events.__aexit__(None, None, None)
        return error_response(exc, raw)
    if task["task_id"] != task_id:  # an idempotent replay: recorded (or not) by its first
        await events.__aexit__(None, None, None)
        task_id = task["task_id"]
    elif recording:
        await recorder_start(task_id, record, events)
    return await _answer(task_id, record, body, events)


async def _answer(task_id: str, record: dict, body: dict, events: TaskEvents):
    if body.get("stream"):
        drop = None if body.get("background") else _canceller(task_id)
        return _sse_response(task_id, record, -1, drop)
    if not body.get("background"):
        await wait_for_task(task_id, WAIT_SECONDS, events)
    task = await sync_to_async(store.load)(task_id)
    response = JsonResponse(response_object(task, record))
    response["X-SOP-Task-Id"] = task_id
    return response


def _canceller(task_id: str):
    """A foreground stream's client that leaves: nobody will read the rest."""

    def cancel() -> None:
        with contextlib.suppress(ServiceError, redis.RedisError):  # it finished meanwhile
            task_cancel(task_id=task_id)

    return sync_to_async(cancel)


async def _detail(request, response_id: str):
    stream = request.GET.get("stream") == "true"
    try:
        after = int(request.GET.get("starting_after", "-1"))
        task, record = await sync_to_async(serving.owned)(response_id, request.user.id)
    except ValueError:
        return openai_error(
            400, "starting_after is an integer", param="starting_after", code="invalid_value"
        )
    except Exception as exc:
        return error_response(exc, {})
    if not stream:
        return JsonResponse(response_object(task, record))
    if not record.get("background") and not record.get("stream"):
        return openai_error(
            400,
            "only a background or streamed response can be streamed later",
            param="stream",
            code="invalid_value",
        )
    return _sse_response(task.task_id, record, after)


async def _call(function, **kwargs):
    try:
        return JsonResponse(await sync_to_async(function)(**kwargs))
    except Exception as exc:
        return error_response(exc, {})


@csrf_exempt
@openai_key_required
@openai_methods("POST")
async def responses(request):
    return await _create(request)


@csrf_exempt
@openai_key_required
@openai_methods("GET", "DELETE")
async def response_detail(request, response_id: str):
    if request.method == "DELETE":
        return await _call(serving.response_delete, response_id=response_id, owner=request.user.id)
    return await _detail(request, response_id)


@csrf_exempt
@openai_key_required
@openai_methods("POST")
async def response_cancel(request, response_id: str):
    return await _call(serving.response_cancel, response_id=response_id, owner=request.user.id)


@openai_key_required
async def response_input_items(request, response_id: str):
    order, after = request.GET.get("order", "desc"), request.GET.get("after")
    try:
        limit = int(request.GET.get("limit", "20"))
    except ValueError:
        limit = 0
    if order not in ("asc", "desc") or not 1 <= limit <= 100:
        param = "order" if order not in ("asc", "desc") else "limit"
        return openai_error(
            400, "order is asc or desc; limit 1 to 100", param=param, code="invalid_value"
        )
    kwargs = {
        "response_id": response_id,
        "owner": request.user.id,
        "order": order,
        "limit": limit,
        "after": after,
    }
    return await _call(serving.response_input_items, **kwargs)
