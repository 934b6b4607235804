"""Waits of one web process share one subscribed Redis connection (tasks.waiting, on
sop_llm.core.subscription.hub): a request subscribes with one SUBSCRIBE instead of a connection
of its own, and each wait still hears only its own task's events, in order."""

import asyncio
import json

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.core.subscription import hub
from tasks.waiting import TaskEvents


def _connections_subscribed_to(n_channels: int) -> int:
    return sum(int(c["sub"]) == n_channels for c in get_redis().client_list())


async def _first_events(waits: list[TaskEvents], per_task: int) -> dict[str, list[int]]:
    heard: dict[str, list[int]] = {}
    for wait in waits:
        async for event in wait.events(timeout=5):
            heard.setdefault(wait.task_id, []).append(event["n"])
            if len(heard[wait.task_id]) == per_task:
                break
    return heard


def test_many_waits_in_one_process_share_one_connection_and_each_hears_only_its_task():
    ids = [f"shared-{i}" for i in range(20)]

    async def scenario():
        waits = [TaskEvents(task_id, tokens=True) for task_id in ids]
        for wait in waits:
            await wait.__aenter__()
        shared = _connections_subscribed_to(2 * len(ids))
        pipe = get_redis().pipeline(transaction=False)
        for n in range(3):
            for task_id in ids:
                channel = keys.pubsub_task_tokens if n % 2 else keys.pubsub_task
                pipe.publish(channel(task_id), json.dumps({"task_id": task_id, "n": n}))
        pipe.execute()
        heard = await _first_events(waits, per_task=3)
        for wait in waits:
            await wait.__aexit__()
        return shared, heard, _connections_subscribed_to(2 * len(ids))

    shared, heard, after = asyncio.run(scenario())
    assert shared == 1  # one connection holds all 40 channels (before: 20 of 2 each)
    assert heard == {task_id: [0, 1, 2] for task_id in ids}
    assert after == 0  # every channel unsubscribed once its wait ended


def test_a_wait_opened_after_others_closed_still_hears_its_events_in_order():
    async def scenario():
        async with TaskEvents("shared-early"):
            pass
        async with TaskEvents("shared-late", tokens=True) as wait:
            for n in range(5):
                get_redis().publish(keys.pubsub_task_tokens("shared-late"), json.dumps({"n": n}))
            return (await _first_events([wait], per_task=5))["shared-late"]

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


def test_a_wait_opened_after_the_shared_connection_sat_idle_past_a_health_check_still_hears():
    """A health check on the subscribed connection would read its PONG beside the reader task
    (redis-py checks a connection with no subscription before sending on it)."""

    async def scenario():
        async with TaskEvents("shared-idle-1") as first:
            pubsub = first.hub.pubsub
        pubsub.connection.next_health_check = 0  # as after 30 s with nothing subscribed
        async with TaskEvents("shared-idle-2", tokens=True) as wait:
            for n in range(3):
                get_redis().publish(keys.pubsub_task_tokens("shared-idle-2"), json.dumps({"n": n}))
            return (await _first_events([wait], per_task=3))["shared-idle-2"]

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_closed_event_loop_lets_go_of_its_shared_connections():
    async def scenario():
        async with TaskEvents("shared-closing"):
            pass

    before = len(hub._hubs)
    for _ in range(3):
        asyncio.run(scenario())  # cancels the hub's reader as the loop closes
    assert len(hub._hubs) == before
