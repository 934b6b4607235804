"""Two tenants with `tasks` keys cannot see, cancel or follow each other's work."""

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator

from sop_llm.asgi import application
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tests.keyring import bearer, client_with, issue


def body(**extra):
    return {
        "provider": "openai_compatible",
        "model": "fake-llm",
        "prompt": "hello",
        "options": {"base_url": "http://127.0.0.1:9/v1"},  # no worker runs: it stays queued
        **extra,
    }


@pytest.fixture
def tenants():
    (_, a), (_, b) = issue("tasks", name="tenant-a"), issue("tasks", name="tenant-b")
    return client_with(a), client_with(b), a, b


def test_another_tenant_s_task_is_a_404_for_reads_reports_and_cancels(tenants, api):
    a, b, _, _ = tenants
    task_id = a.post("/api/v1/tasks", body(), format="json").json()["task_id"]
    missing = "f" * 32
    for method, path in [
        ("get", "/api/v1/tasks/{}"),
        ("get", "/api/v1/tasks/{}/report"),
        ("post", "/api/v1/tasks/{}/cancel"),
        ("post", "/api/v1/tasks/{}/webhook/redeliver"),
    ]:
        theirs = getattr(b, method)(path.format(task_id))
        unknown = getattr(b, method)(path.format(missing))
        assert theirs.status_code == unknown.status_code == 404, theirs.content
        # Word for word what a task that does not exist gets: existence does not leak.
        assert theirs.json() == json.loads(json.dumps(unknown.json()).replace(missing, task_id))
    assert a.get(f"/api/v1/tasks/{task_id}").json()["status"] == "queued"  # b's cancel did nothing
    assert api.get(f"/api/v1/tasks/{task_id}").status_code == 200  # an admin sees every task
    assert a.post(f"/api/v1/tasks/{task_id}/cancel").json()["status"] == "cancelled"


def test_an_idempotency_key_belongs_to_its_tenant(tenants):
    a, b, _, _ = tenants
    first = a.post("/api/v1/tasks", body(), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    other = b.post("/api/v1/tasks", body(), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    again = a.post("/api/v1/tasks", body(), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == other.status_code == 202
    assert first.json()["task_id"] != other.json()["task_id"]
    assert again.status_code == 200 and again.json()["task_id"] == first.json()["task_id"]
    assert b.get(f"/api/v1/tasks/{first.json()['task_id']}").status_code == 404


async def _socket(key: str) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, "/ws/monitor", headers=bearer(key))
    connected, _ = await socket.connect()
    assert connected
    await socket.send_to("{}")  # answered once subscribed: nothing published is missed after
    assert json.loads(await socket.receive_from(timeout=5))["type"] == "filter.ok"
    return socket


def test_a_tasks_key_on_the_websocket_hears_only_its_own_tasks(tenants):
    a, b, key_a, _ = tenants
    _, monitor_key = issue("monitor", name="ops")

    async def scenario():
        mine, everything = await _socket(key_a), await _socket(monitor_key)
        theirs = await asyncio.to_thread(
            lambda: b.post("/api/v1/tasks", body(), format="json").json()
        )
        own = await asyncio.to_thread(lambda: a.post("/api/v1/tasks", body(), format="json").json())
        first = json.loads(await mine.receive_from(timeout=5))
        assert first["type"] == "task.queued" and first["task_id"] == own["task_id"]
        seen = [json.loads(await everything.receive_from(timeout=5))["task_id"] for _ in range(2)]
        assert seen == [theirs["task_id"], own["task_id"]]
        await mine.disconnect()
        await everything.disconnect()

    asyncio.run(scenario())


def _as_written_before_the_owner_field(task_id: str) -> str:
    """Store the task's owner under `client`, as tasks were before the rename; -> the owner."""
    session, redis = keys.session(task_id), get_redis()
    owner = redis.hget(session, "owner")
    redis.pipeline().hset(session, "client", owner).hdel(session, "owner").execute()
    return owner


def test_a_task_stored_before_the_owner_field_keeps_its_owner(tenants):
    a, b, key_a, _ = tenants
    task_id = a.post("/api/v1/tasks", body(), format="json").json()["task_id"]
    owner = _as_written_before_the_owner_field(task_id)
    assert owner and get_redis().hget(keys.session(task_id), "owner") is None
    assert b.get(f"/api/v1/tasks/{task_id}").status_code == 404
    assert a.get(f"/api/v1/tasks/{task_id}").json()["status"] == "queued"

    async def scenario():
        mine = await _socket(key_a)  # it hears the old task's events: the monitor knows its owner
        cancel = await asyncio.to_thread(lambda: a.post(f"/api/v1/tasks/{task_id}/cancel"))
        assert cancel.json()["status"] == "cancelled"
        assert json.loads(await mine.receive_from(timeout=5))["task_id"] == task_id
        await mine.disconnect()

    asyncio.run(scenario())
    assert get_redis().scard(keys.principal_open(owner)) == 0  # its open-task slot given back


@pytest.mark.parametrize(
    "text,words",
    [
        ('{"type": ["task.queued"]}', "unknown field 'type'"),
        ('{"task_id": 7}', "task_id must be a string"),
        ('["task.queued"]', "send a JSON object"),
    ],
)
def test_the_websocket_refuses_a_filter_it_cannot_honour(api, text, words):
    from tests.conftest import API_KEY

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/monitor", headers=bearer(API_KEY))
        await socket.connect()
        await socket.send_to(text)
        answer = json.loads(await socket.receive_from(timeout=5))
        assert answer["type"] == "error" and words in answer["message"], answer
        await socket.disconnect()

    asyncio.run(scenario())
