"""Revocation reaches every process and every open WebSocket; keys are never kept in clear."""

import asyncio
import json
import logging

import requests
from channels.testing import WebsocketCommunicator

from sop_llm.access.apikeys.services import key_revoke, key_update
from sop_llm.asgi import application
from sop_llm.core.redis import get_redis
from tests.fakes.servers import FakeServer, Reply, openai_chat
from tests.keyring import bearer, client_with, issue


def test_a_revoked_key_is_refused_by_another_web_process_on_its_next_request(processes):
    url = processes.web()
    record, key = issue("tasks", "monitor", name="elsewhere")
    headers = {"Authorization": f"Bearer {key}"}
    assert (
        requests.get(f"{url}/api/v1/monitor/status", headers=headers, timeout=10).status_code == 200
    )
    assert requests.get(f"{url}/metrics", headers=headers, timeout=10).status_code == 200
    key_revoke(key_id=record["id"])
    for path in ("/api/v1/monitor/status", "/metrics", "/v1/models"):
        refused = requests.get(f"{url}{path}", headers=headers, timeout=10)
        assert refused.status_code == 401, path
        assert "revoked" in refused.json()["error"]["message"]


def test_revoking_a_key_closes_its_open_websockets():
    record, key = issue("tasks", name="watcher")
    _, other = issue("tasks", name="bystander")

    async def scenario():
        doomed = WebsocketCommunicator(application, "/ws/monitor", headers=bearer(key))
        untouched = WebsocketCommunicator(application, "/ws/monitor", headers=bearer(other))
        assert (await doomed.connect())[0] and (await untouched.connect())[0]
        await asyncio.to_thread(key_revoke, key_id=record["id"])
        said = json.loads(await doomed.receive_from(timeout=3))
        assert said == {"type": "error", "message": "this API key was revoked"}
        assert await doomed.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
        await untouched.send_to("{}")
        assert json.loads(await untouched.receive_from(timeout=3))["type"] == "filter.ok"
        await untouched.disconnect()

    asyncio.run(scenario())


def _everything_in_redis(prefix: str) -> str:
    """Every key name and value under this test's prefix, as one text."""
    redis, parts = get_redis(), []
    for name in redis.scan_iter(match=f"{prefix}*", count=1000):
        kind = redis.type(name)
        value = {
            "string": lambda n: redis.get(n),
            "hash": lambda n: redis.hgetall(n),
            "list": lambda n: redis.lrange(n, 0, -1),
            "set": lambda n: redis.smembers(n),
            "zset": lambda n: redis.zrange(n, 0, -1),
        }.get(kind, lambda n: "")(name)
        parts.append(f"{name} {value}")
    return "\n".join(parts)


def test_a_key_is_never_stored_or_logged_in_clear(api, burst, caplog, redis_prefix):
    caplog.set_level(logging.DEBUG)
    created = api.post(
        "/api/v1/keys", {"name": "secret", "scopes": ["tasks"]}, format="json"
    ).json()
    key = created["key"]
    client = client_with(key)
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("ok", prompt_tokens=3, completion_tokens=1)))
        task = {
            "provider": "openai_compatible",
            "model": "fake-llm",
            "prompt": "hi",
            "options": {"base_url": f"{fake.url}/v1"},
        }
        task_id = client.post("/api/v1/tasks", task, format="json").json()["task_id"]
        burst("remote")
    assert client.get(f"/api/v1/tasks/{task_id}/report").status_code == 200
    client.get("/api/v1/monitor/status")  # a 403, logged
    api.delete(f"/api/v1/keys/{created['id']}")
    client.get("/api/v1/grammars")  # a 401, logged
    stored = _everything_in_redis(redis_prefix)
    assert "apikey:" in stored and created["id"] in stored  # the scan does see the key's record
    assert key not in stored and key.removeprefix("sk-sop-") not in stored
    assert caplog.text and key not in caplog.text


def test_a_scope_change_reaches_an_open_websocket():
    record, key = issue("monitor", name="narrowed")

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/monitor", headers=bearer(key))
        assert (await socket.connect())[0]
        await asyncio.to_thread(key_update, key_id=record["id"], scopes=["models"])
        said = json.loads(await socket.receive_from(timeout=3))
        assert said["type"] == "error" and "lacks the monitor or tasks scope" in said["message"]
        assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}

    asyncio.run(scenario())
