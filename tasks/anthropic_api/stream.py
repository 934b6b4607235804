"""A Messages stream in Anthropic's events: message_start, ping, content_block_start /
content_block_delta (text_delta, input_json_delta) / content_block_stop, message_delta,
message_stop; a failure is an `error` event in the door's one error shape."""

import asyncio
import contextlib
import json

import redis
from asgiref.sync import sync_to_async

from sop_llm.core.errors import ServiceError
from tasks.anthropic_api.errors import sse, sse_error
from tasks.anthropic_api.serving import REDIS_LOST, WAIT_SECONDS, failure
from tasks.anthropic_api.translate import content_of, message_head, stop_reason, usage_of
from tasks.openai.views import _Relay
from tasks.result import TaskResult
from tasks.services import task_cancel
from tasks.status import TaskStatus
from tasks.store import FINAL
from tasks.waiting import FINAL_EVENTS, TaskEvents

RESTARTED = (
    "the generation restarted (its worker was lost, or a fallback took over after a failed "
    "attempt): the text streamed so far is not part of the answer. The task goes on; fetch "
    "its result by the X-SOP-Task-Id header."
)


def _start(index: int, block: dict) -> str:
    data = {"type": "content_block_start", "index": index, "content_block": block}
    return sse("content_block_start", data)


def _delta(index: int, delta: dict) -> str:
    return sse(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _stop(index: int) -> str:
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def _text(index: int, text: str) -> str:
    return _delta(index, {"type": "text_delta", "text": text})


async def message_stream(events: TaskEvents, task: dict, model: str):
    task_id, relay, finished = task["task_id"], _Relay(), False
    try:
        head = {"type": "message_start", "message": message_head(task_id, model)}
        yield sse("message_start", head) + sse("ping", {"type": "ping"})
        current = await events.task()
        if current["status"] not in FINAL:
            async for event in events.events(WAIT_SECONDS):
                if relay.restarts(event):
                    finished = True  # the task goes on; its id is in X-SOP-Task-Id
                    yield sse_error(500, RESTARTED)
                    return
                if event["type"] == "task.token" and (text := relay.take(event)):
                    yield (_start(0, {"type": "text", "text": ""}) if relay.sent == text else "")
                    yield _text(0, text)
                elif event["type"] in FINAL_EVENTS:
                    break
            current = await events.task()
        finished = current["status"] in FINAL
        for piece in _closing(current, relay.sent):
            yield piece
    except (redis.RedisError, OSError):
        finished = True  # the task goes on: nothing can be read or cancelled without Redis
        yield sse_error(503, REDIS_LOST)
    except asyncio.CancelledError:
        raise
    finally:
        await events.__aexit__(None, None, None)
        if not finished:  # the client went away mid-stream: nobody will read the rest
            await sync_to_async(_cancel_quietly)(task_id)


def _closing(task: dict, sent: str):
    if task["status"] != TaskStatus.COMPLETED:
        yield sse_error(*failure(task))
        return
    choice = TaskResult.from_record(task["result"]).choices[0]
    text = choice.text
    if not text.startswith(sent):  # a later attempt answered: what streamed was not it
        yield sse_error(500, RESTARTED)
        return
    blocks, index = content_of(choice), 0
    if sent:  # the text block is open: its rest (rare), then it ends
        yield (_text(0, text[len(sent) :]) if len(text) > len(sent) else "") + _stop(0)
        blocks, index = [b for b in blocks if b["type"] != "text"], 1
    for offset, block in enumerate(blocks):
        yield _whole_block(index + offset, block)
    usage = usage_of(task)
    delta = {"stop_reason": stop_reason(choice), "stop_sequence": None}
    yield sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
    yield sse("message_stop", {"type": "message_stop"})


def _whole_block(index: int, block: dict) -> str:
    if block["type"] == "text":
        start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
    else:
        start = {**block, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    return _start(index, start) + _delta(index, delta) + _stop(index)


def _cancel_quietly(task_id: str) -> None:
    with contextlib.suppress(ServiceError, redis.RedisError):  # it finished in the meantime
        task_cancel(task_id=task_id)
