"""Token events of many tasks streaming at once (a GPU worker's batch): one publisher thread
per process, each task's text whole and in order on its channel, flushed before close()."""

import json
import threading
import time

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import TokenStream


def _token_threads() -> int:
    return sum(t.name.startswith("tokens") for t in threading.enumerate())


def _events_until_quiet(pubsub) -> list[dict]:
    """Everything published (close() flushed it all), until a second of silence."""
    events, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < 1.0:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            events.append(json.loads(message["data"]))
            quiet_since = time.monotonic()
    return events


def test_many_streaming_tasks_share_one_publisher_thread_and_each_arrives_whole_in_order():
    streams = [TokenStream(f"tp-{i}") for i in range(20)]
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*[keys.pubsub_task_tokens(s.task_id) for s in streams])
    for step in range(30):  # like a decode step: one token per task
        for stream in streams:
            stream(f"{step} ")
    assert _token_threads() == 1
    for stream in streams:
        stream.close()
    received: dict[str, list[dict]] = {s.task_id: [] for s in streams}
    for event in _events_until_quiet(pubsub):
        received[event["task_id"]].append(event)
    pubsub.close()
    expected = "".join(f"{step} " for step in range(30))
    for events in received.values():
        assert "".join(e["text"] for e in events) == expected
        assert [e["index"] for e in events] == [
            sum(x["tokens"] for x in events[:k]) for k in range(len(events))
        ]
        assert sum(e["tokens"] for e in events) == 30


def test_tokens_arriving_every_few_milliseconds_go_out_a_few_per_event(settings):
    settings.TOKEN_FLUSH_MS = 20
    stream = TokenStream("tp-steps")
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.pubsub_task_tokens(stream.task_id))
    for step in range(40):  # a 5 ms decode step
        stream(f"{step} ")
        time.sleep(0.005)
    stream.close()
    events = _events_until_quiet(pubsub)
    pubsub.close()
    assert "".join(e["text"] for e in events) == "".join(f"{step} " for step in range(40))
    assert len(events) <= 20  # one per step (40) without the flush interval


def test_a_task_that_ends_does_not_wait_out_the_flush_interval(settings):
    settings.TOKEN_FLUSH_MS = 2000
    stream = TokenStream("tp-end")
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.pubsub_task_tokens(stream.task_id))
    stream("first ")
    time.sleep(0.1)  # the first went out at once; the next would wait 2 s
    stream("last")
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1.0
    events = _events_until_quiet(pubsub)
    pubsub.close()
    assert "".join(e["text"] for e in events) == "first last"
