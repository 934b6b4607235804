"""Records a response's typed events into a Redis stream as its task runs, so any client can
read them live or later, and resume after any sequence number.

One recorder a response (a lock with a short TTL, refreshed while it runs): it is started
where the response is created; if that process dies, the next reader that finds the lock gone
takes over, rebuilding its state from the stream (tokens it missed come as one delta at the
end). It lives in the web process, outside any request: a background response needs no client.
"""

import asyncio
import contextlib
import json
import logging
import uuid

import redis

from sop_llm.core import keys
from sop_llm.core.subscription import bounded
from tasks import store
from tasks.relay import continues
from tasks.responses import events as ev
from tasks.responses.objects import message_item, output_items, response_object
from tasks.waiting import FINAL_EVENTS, TaskEvents

log = logging.getLogger(__name__)
LOCK_SECONDS = 15
LISTEN_SECONDS = 5.0
_running: set[asyncio.Task] = set()  # a reference, so the loop does not drop them


class Recorder:
    def __init__(self, task_id: str, record: dict, events: TaskEvents):
        self.task_id, self.record, self.events = task_id, record, events
        self.client, self.lock_token = events.client, uuid.uuid4().hex
        self.seq, self.sent, self.seen = 0, "", set()
        self.generation: tuple | None = None
        self.late = False  # joined under way or restarted: the text comes whole at the end
        choice = record.get("tool_choice", "auto")
        self.whole = bool(record.get("tools")) and choice != "none"

    async def emit(self, event: dict) -> None:
        event = {**event, "sequence_number": self.seq}
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        key = keys.response_events(self.task_id)
        await bounded(self.client.xadd(key, {"e": data}, id=f"0-{self.seq + 1}"), "an event")
        await bounded(self.client.expire(key, store.session_ttl()), "an expiry")
        self.seq += 1
        self.seen.add(event["type"])

    async def task(self) -> store.Task | None:
        raw = await bounded(self.client.hgetall(keys.session(self.task_id)), "a task read")
        return store.Task.from_hash(raw) if raw else None

    def snapshot(self, task: store.Task) -> dict:
        return response_object(task, self.record)

    async def resume(self) -> None:
        """A takeover: continue the numbering and the text where the stream stands."""
        entries = await self.client.xrange(keys.response_events(self.task_id))
        for _, fields in entries:
            event = json.loads(fields["e"])
            self.seen.add(event["type"])
            if event["type"] == "response.output_text.delta":
                self.sent += event["delta"]
        self.seq, self.late = len(entries), True

    async def run(self) -> None:
        task = await self.task()
        if task is None:
            return
        if "response.created" not in self.seen:
            await self.emit(ev.lifecycle("response.created", self.snapshot(task)))
        while not task.final:
            await self.started(task)
            async for event in self.events.events(LISTEN_SECONDS):
                if event["type"] == "task.token":
                    await self.token(event)
                elif event["type"] in FINAL_EVENTS:
                    break
            await self.hold()
            task = await self.task()
            if task is None:
                return
        await self.close(task)

    async def started(self, task: store.Task) -> None:
        if task.status != "queued" and "response.in_progress" not in self.seen:
            await self.emit(ev.lifecycle("response.in_progress", self.snapshot(task)))

    async def hold(self) -> None:
        lock = keys.response_recorder(self.task_id)
        await bounded(self.client.set(lock, self.lock_token, ex=LOCK_SECONDS), "the lock")

    async def token(self, event: dict) -> None:
        generation = (event.get("run"), event.get("attempt"))
        if self.generation is None and (event.get("index", 0) > 0 or event.get("offset")):
            self.late = True
        # A run resumed from a checkpoint goes on from text already sent (what it repeats is
        # skipped); any other new generation, or a resumed one that went another way, waits
        # for the end (close_text then sends the rest, or says the stream restarted).
        moved_on = self.generation and not continues(event, self.sent)
        if moved_on and (generation != self.generation or event.get("resumed_at")):
            self.late = True
        if self.whole or self.late:
            return
        if "response.in_progress" not in self.seen:
            task = await self.task()
            await self.emit(ev.lifecycle("response.in_progress", self.snapshot(task)))
        self.generation = generation
        await self.open()
        text = event["text"]
        if event.get("resumed_at"):
            text = text[max(0, len(self.sent) - event["offset"]) :]
        if text:
            await self.emit(ev.text_delta(f"msg_{self.task_id}", text))
        self.sent += text

    async def open(self) -> None:
        if "response.output_item.added" not in self.seen:
            item = message_item(self.task_id, "", "in_progress")
            await self.emit(ev.item_added(0, {**item, "content": []}))
            await self.emit(ev.part_added(item["id"]))

    async def close(self, task: store.Task) -> None:
        await self.started(task)
        for index, item in enumerate(output_items(task)):
            if item["type"] == "function_call":
                for event in ev.call_events(index, item):
                    await self.emit(event)
            else:
                await self.close_text(item)
        await self.emit(ev.terminal(self.snapshot(task)))

    async def close_text(self, item: dict) -> None:
        text = item["content"][0]["text"]
        await self.open()
        if not text.startswith(self.sent):
            await self.emit(ev.error("stream_restarted", RESTARTED))
        elif len(text) > len(self.sent):
            await self.emit(ev.text_delta(item["id"], text[len(self.sent) :]))
        await self.emit(ev.text_done(item["id"], text))
        await self.emit(ev.part_done(item["id"], text))
        await self.emit(ev.item_done(0, item))


RESTARTED = (
    "the generation restarted (its worker was lost, or a fallback took over): the text "
    "streamed so far is not part of the answer; output_text.done holds the answer"
)


async def _record(recorder: Recorder, resume: bool) -> None:
    try:
        if resume:
            await recorder.resume()
        await recorder.run()
    except (redis.RedisError, OSError) as exc:  # the next reader takes over
        log.warning("recording response %s stopped: %s", recorder.task_id, exc)
    except Exception:
        log.exception("recording response %s failed", recorder.task_id)
    finally:
        with contextlib.suppress(redis.RedisError, OSError):
            lock = keys.response_recorder(recorder.task_id)
            if await recorder.client.get(lock) == recorder.lock_token:
                await recorder.client.delete(lock)
        await recorder.events.__aexit__(None, None, None)


async def recorder_start(task_id: str, record: dict, events: TaskEvents, *, resume=False) -> bool:
    """Record in the background (`events`: subscribed, with tokens, before the task existed,
    or now for a takeover). -> False when another recorder holds the response."""
    recorder = Recorder(task_id, record, events)
    lock = keys.response_recorder(task_id)
    if not await bounded(
        recorder.client.set(lock, recorder.lock_token, nx=True, ex=LOCK_SECONDS), "the lock"
    ):
        await events.__aexit__(None, None, None)
        return False
    job = asyncio.get_running_loop().create_task(_record(recorder, resume))
    _running.add(job)
    job.add_done_callback(_running.discard)
    return True
