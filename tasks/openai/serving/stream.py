"""A task's answer as the SSE stream of chat.completion.chunk / text_completion chunks: the
relayed tokens (tasks.relay), then the closing chunks, or the error event that ends it.

A streaming client that disconnects cancels its task: nobody is left to read the tokens."""

import asyncio
import contextlib

import redis
from asgiref.sync import sync_to_async

from sop_llm.core.errors import ServiceError
from tasks.openai.errors import REDIS_LOST, error_body, sse_error
from tasks.openai.protocol.sse import DONE, sse
from tasks.openai.serving.chunks import chunk, whole_chunks
from tasks.openai.serving.objects import usage_of
from tasks.relay import Relay
from tasks.result import TaskResult
from tasks.services import task_cancel
from tasks.status import TaskStatus
from tasks.store import FINAL
from tasks.waiting import TaskEvents

WAIT_SECONDS = 600
RESTARTED = error_body(
    "the generation restarted (its worker was lost, or a fallback took over after a failed "
    "attempt): the text streamed so far is not part of the answer. The task goes on; fetch its "
    "result by the X-SOP-Task-Id header.",
    type_="api_error",
    code="stream_restarted",
)


async def sse_stream(
    events: TaskEvents, task: dict, model: str, chat: bool, include_usage: bool, whole: bool
):
    task_id, relay, finished = task["task_id"], Relay(), False
    try:
        if chat and not whole:
            yield sse(chunk(task_id, model, chat=True, role=True))
        current = await events.task()
        if current["status"] not in FINAL:
            async for event in events.events(WAIT_SECONDS):
                text, end = relay.batch([event, *events.ready()])
                if text:
                    yield sse(chunk(task_id, model, chat=chat, text=text))
                if end == "restarted":
                    finished = True  # the task goes on; its id is in X-SOP-Task-Id
                    yield sse(RESTARTED) + DONE
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
        yield (
            sse_error(REDIS_LOST.format(id=task_id), type_="server_error", code="redis_unavailable")
            + DONE
        )
    except asyncio.CancelledError:
        raise
    finally:
        await events.__aexit__(None, None, None)
        if not finished:  # the client went away mid-stream: nobody will read the rest
            await sync_to_async(_cancel_quietly, thread_sensitive=False)(task_id)


def _failed(task: dict) -> str:
    error = task.get("error") or {"message": "the task did not finish in time"}
    return sse_error(error.get("message"), type_="api_error", code=error.get("code")) + DONE


def _closing_whole(task: dict, model: str, chat: bool, sent: str, include_usage: bool):
    if task["status"] != TaskStatus.COMPLETED:
        yield _failed(task)
        return
    for piece in whole_chunks(task, model, chat=chat):
        yield sse(piece)
    if include_usage:
        yield sse(chunk(task["task_id"], model, chat=chat, usage=usage_of(task)))
    yield DONE


def _closing(task: dict, model: str, chat: bool, sent: str, include_usage: bool):
    task_id = task["task_id"]
    if task["status"] != TaskStatus.COMPLETED:
        yield _failed(task)
        return
    result = TaskResult.from_record(task["result"])
    text = result.text
    if not text.startswith(sent):  # a later attempt answered: what streamed was not it
        yield sse(RESTARTED)
        yield DONE
        return
    if len(text) > len(sent):  # anything not streamed (rare)
        yield sse(chunk(task_id, model, chat=chat, text=text[len(sent) :]))
    yield sse(chunk(task_id, model, chat=chat, finish=result.finish_reason))
    if include_usage:
        yield sse(chunk(task_id, model, chat=chat, usage=usage_of(task)))
    yield DONE


def _cancel_quietly(task_id: str) -> None:
    with contextlib.suppress(ServiceError, redis.RedisError):  # it finished in the meantime
        task_cancel(task_id=task_id)
