"""`/v1/chat/completions`, `/v1/completions`, `/v1/models`: the OpenAI wire format in front of
the ordinary task pipeline (queue, priorities, GPU Guard, fallbacks, reports).

A streaming client that disconnects cancels its task (nobody is left to read the tokens); a
non-streaming one that disconnects leaves it running, like the native API (see README)."""

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from functools import partial

import redis
from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import ValidationError

from sop_llm.access.auth import api_key_required
from sop_llm.access.principals import ANY_KEY
from sop_llm.core import jsonparse
from sop_llm.core.errors import ServiceError, _first_error
from sop_llm.core.methods import require_methods
from sop_llm.core.schema import documented
from tasks.openai import schema
from tasks.openai.failures import failure_status
from tasks.openai.serializers import openai_param, openai_request
from tasks.openai.translate import (
    UnknownModel,
    chunk,
    completion_object,
    model_retrieve,
    models_list,
    streams_whole,
    task_data,
    usage_of,
    whole_chunks,
)
from tasks.result import TaskResult
from tasks.serializers import TaskCreateSerializer, idempotency_key_for
from tasks.services import new_task_id, task_cancel, task_create
from tasks.status import TaskStatus
from tasks.store import FINAL
from tasks.waiting import FINAL_EVENTS, TaskEvents, wait_for_task

log = logging.getLogger(__name__)
WAIT_SECONDS = 600


def _method_refused(request, allowed: str) -> JsonResponse:
    return openai_error(405, f"Use {allowed}.", code="method_not_allowed")


openai_methods = partial(require_methods, refuse=_method_refused)  # the 405 in OpenAI's shape


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    task_id=None,
):
    response = JsonResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}, status=status
    )
    if task_id:
        response["X-SOP-Task-Id"] = task_id
    return response


# ServiceError code -> (OpenAI error type, OpenAI code, message) for the policy's refusals
POLICY_ERRORS = {
    "unauthorized": ("invalid_request_error", "invalid_api_key", None),
    "missing_scope": ("permission_error", "missing_scope", None),
    "rate_limited": ("rate_limit_error", "rate_limit_exceeded", None),
    "redis_unavailable": ("server_error", "redis_unavailable", None),
}


def openai_error_from(error: ServiceError):
    """One error factory for the OpenAI routes: our ServiceError in OpenAI's shape."""
    fallback = "rate_limit_error" if error.status == 429 else "invalid_request_error"
    type_, code, message = POLICY_ERRORS.get(error.code, (fallback, error.code, None))
    response = openai_error(
        error.status, message or error.message, type_=type_, param=error.field, code=code
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


openai_key_required = api_key_required(scope="tasks", respond=openai_error_from)


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


def _request_body(raw: bytes, *, chat: bool) -> tuple[dict, None] | tuple[None, JsonResponse]:
    """(the validated OpenAI request, None) or (None, the 400 to answer)."""
    try:
        body = jsonparse.loads(raw or b"{}")
    except jsonparse.BadJSON as exc:
        return None, openai_error(400, f"The body is not valid JSON: {exc}", code="invalid_json")
    if not isinstance(body, dict):
        return None, openai_error(400, "The body is not a JSON object.", code="invalid_json")
    try:
        return openai_request(body, chat=chat), None
    except ValidationError as exc:
        return None, create_error(exc, body)


async def _handle(request, *, chat: bool):
    body, refusal = _request_body(request.body, chat=chat)
    if refusal is not None:
        return refusal
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
    model = body["model"]
    if stream:
        include_usage = (body.get("stream_options") or {}).get("include_usage", False)
        response = StreamingHttpResponse(
            _stream(events, task, model, chat, include_usage, whole),
            content_type="text/event-stream",
        )
        response["Cache-Control"], response["X-Accel-Buffering"] = "no-cache", "no"
    else:
        response = await _wait(events, task, model, chat, created=created)
    response["X-SOP-Task-Id"] = task["task_id"]
    return response


def create_error(exc: Exception, body: dict, *, param_name=lambda field: field, what="OpenAI"):
    """One error answer for every way creating a task can fail; `param_name` renames a field
    path for a door whose names differ (the Responses API's)."""
    if isinstance(exc, UnknownModel):
        param = param_name(exc.param)
        return openai_error(404, str(exc), code="model_not_found", param=param)
    if isinstance(exc, ValidationError):
        field, message = _first_error(exc.detail)  # the field goes in `param`, not the message
        param = param_name(openai_param(field, body))
        return openai_error(400, message, param=param, code="invalid_value")
    if isinstance(exc, ServiceError):
        return openai_error_from(exc)
    if isinstance(exc, redis.RedisError):
        return openai_error(
            503,
            "Redis is unavailable; try again shortly",
            type_="server_error",
            code="redis_unavailable",
        )
    log.exception("%s request failed", what)
    return openai_error(500, "internal error", type_="server_error", code="internal")


REDIS_LOST = (
    "Redis stopped answering while this request waited; task {id} goes on: fetch its result "
    "with GET /api/v1/tasks/{id} once Redis is back (sending the request again would run it "
    "again)"
)


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
    return _final_response(current, model, chat)


def _final_response(task: dict, model: str, chat: bool):
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


RESTARTED = {
    "error": {
        "message": "the generation restarted (its worker was lost, or a fallback took over after "
        "a failed attempt): the text streamed so far is not part of the answer. The task goes "
        "on; fetch its result by the X-SOP-Task-Id header.",
        "type": "api_error",
        "param": None,
        "code": "stream_restarted",
    }
}


def _sse(data) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def _restarted(event: dict, generation: tuple | None, sent: str = "") -> bool:
    """After text went out, a token of another run or attempt, or a requeue, means the
    answer starts over: what was streamed is not part of it. The creation's own task.queued
    (no `reason`) may arrive after the first tokens: a busy GPU worker claims a task between
    its creation's write and that event. A requeue that resumes from a checkpoint, and the
    tokens of the run that resumes, go on from text already sent (`_continues`)."""
    if generation is None:
        return False
    if event["type"] == "task.queued":
        resumes = event.get("resumes") or {}
        return "reason" in event and not resumes.get("offset", len(sent) + 1) <= len(sent)
    if event["type"] != "task.token":
        return False
    return (event.get("run"), event.get("attempt")) != generation and not _continues(event, sent)


def _continues(event: dict, sent: str) -> bool:
    """A resumed run's token: its text starts at `offset` of the answer, at or before the end
    of what was sent, and agrees with what was sent from there (a resumed greedy run repeats
    the tokens generated after its checkpoint; batch numerics or a sampled run may not)."""
    offset = event.get("offset")
    if not event.get("resumed_at") or offset is None or offset > len(sent):
        return False
    overlap = sent[offset : offset + len(event["text"])]
    return event["text"].startswith(overlap)


@dataclass
class _Relay:
    """What a stream has passed on of a task's tokens."""

    sent: str = ""
    generation: tuple | None = None  # (run, attempt) of the tokens sent
    late: bool = False  # joined an answer under way (an idempotent replay): text comes at the end

    def take(self, event: dict) -> str | None:
        if self.generation is None and (event.get("index", 0) > 0 or event.get("offset")):
            self.late = True
        if self.late:
            return None
        self.generation = (event.get("run"), event.get("attempt"))
        text = event["text"]
        if event.get("resumed_at"):  # what a resumed run repeats was sent already
            text = text[max(0, len(self.sent) - event["offset"]) :]
        self.sent += text
        return text

    def restarts(self, event: dict) -> bool:
        """Does `event` mean the answer starts over (what was sent is not part of it)? Also a
        resumed run's token whose text went another way than the text already sent."""
        if _restarted(event, self.generation, self.sent):
            return True
        if self.generation is None or self.late or not event.get("resumed_at"):
            return False
        return event["type"] == "task.token" and not _continues(event, self.sent)

    def batch(self, events: list[dict]) -> tuple[str, str | None]:
        """Events that piled up while the relay was busy -> (their text, in one chunk; what
        ended it: "restarted", "final" or None). One chunk is one write and one JSON encoding
        for the web, and one parse for the client, whatever the number of events."""
        texts = []
        for event in events:
            if self.restarts(event):
                return "".join(texts), "restarted"
            if event["type"] == "task.token" and (text := self.take(event)):
                texts.append(text)
            elif event["type"] in FINAL_EVENTS:
                return "".join(texts), "final"
        return "".join(texts), None


async def _stream(
    events: TaskEvents, task: dict, model: str, chat: bool, include_usage: bool, whole: bool
):
    task_id, relay, finished = task["task_id"], _Relay(), False
    try:
        if chat and not whole:
            yield _sse(chunk(task_id, model, chat=True, role=True))
        current = await events.task()
        if current["status"] not in FINAL:
            async for event in events.events(WAIT_SECONDS):
                text, end = relay.batch([event, *events.ready()])
                if text:
                    yield _sse(chunk(task_id, model, chat=chat, text=text))
                if end == "restarted":
                    finished = True  # the task goes on; its id is in X-SOP-Task-Id
                    yield _sse(RESTARTED) + "data: [DONE]\n\n"
                    return
                if end == "final":
                    break
            current = await events.task()
        finished = current["status"] in FINAL
        closing = _closing_whole if whole else _closing
        for piece in closing(current, model, chat, relay.sent, include_usage):
            yield piece
    except (redis.RedisError, OSError):
        finished = True  # the task goes on: nothing can be read or cancelled without Redis
        error = {"message": REDIS_LOST, "type": "server_error", "param": None}
        yield _sse({"error": {**error, "code": "redis_unavailable"}}) + "data: [DONE]\n\n"
    except asyncio.CancelledError:
        raise
    finally:
        await events.__aexit__(None, None, None)
        if not finished:  # the client went away mid-stream: nobody will read the rest
            await sync_to_async(_cancel_quietly, thread_sensitive=False)(task_id)


def _failed(task: dict) -> str:
    error = task.get("error") or {"message": "the task did not finish in time"}
    shape = {"message": error.get("message"), "type": "api_error", "param": None}
    return _sse({"error": {**shape, "code": error.get("code")}}) + "data: [DONE]\n\n"


def _closing_whole(task: dict, model: str, chat: bool, sent: str, include_usage: bool):
    if task["status"] != TaskStatus.COMPLETED:
        yield _failed(task)
        return
    for piece in whole_chunks(task, model, chat=chat):
        yield _sse(piece)
    if include_usage:
        yield _sse(chunk(task["task_id"], model, chat=chat, usage=usage_of(task)))
    yield "data: [DONE]\n\n"


def _closing(task: dict, model: str, chat: bool, sent: str, include_usage: bool):
    task_id = task["task_id"]
    if task["status"] != TaskStatus.COMPLETED:
        yield _failed(task)
        return
    result = TaskResult.from_record(task["result"])
    text = result.text
    if not text.startswith(sent):  # a later attempt answered: what streamed was not it
        yield _sse(RESTARTED)
        yield "data: [DONE]\n\n"
        return
    if len(text) > len(sent):  # anything not streamed (rare)
        yield _sse(chunk(task_id, model, chat=chat, text=text[len(sent) :]))
    yield _sse(chunk(task_id, model, chat=chat, finish=result.finish_reason))
    if include_usage:
        yield _sse(chunk(task_id, model, chat=chat, usage=usage_of(task)))
    yield "data: [DONE]\n\n"


def _cancel_quietly(task_id: str) -> None:
    with contextlib.suppress(ServiceError, redis.RedisError):  # it finished in the meantime
        task_cancel(task_id=task_id)


@documented(post=schema.CHAT)
@csrf_exempt
@openai_key_required
@openai_methods("POST")
async def chat_completions(request):
    return await _handle(request, chat=True)


@documented(post=schema.COMPLETIONS)
@csrf_exempt
@openai_key_required
@openai_methods("POST")
async def completions(request):
    return await _handle(request, chat=False)


# The catalog is for any valid key, whatever its scopes (as /api/v1/models).
openai_any_key = api_key_required(scope=ANY_KEY, respond=openai_error_from)


@documented(get=schema.MODELS)
@openai_any_key
@openai_methods("GET")
async def models(request):
    return JsonResponse(await sync_to_async(models_list)())


@documented(get=schema.MODEL)
@openai_any_key
@openai_methods("GET")
async def model_detail(request, model_id: str):
    try:
        return JsonResponse(await sync_to_async(model_retrieve)(model_id))
    except UnknownModel as exc:
        return openai_error(404, str(exc), code="model_not_found")
