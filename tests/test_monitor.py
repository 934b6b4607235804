"""Monitoring: logs in Redis, the status/queue/logs/stats endpoints, metrics, the WebSocket."""

import asyncio
import json
import logging

import pytest
from channels.testing import WebsocketCommunicator

from sop_llm.asgi import application
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import TokenStream, publish
from sop_llm.core.telemetry.logs import (
    RECENT_KEPT,
    RedisLogHandler,
    current_task_id,
    flush_logs,
    write_records,
)
from tests.conftest import API_KEY
from tests.fakes.servers import FakeServer, Reply, openai_chat


def body(url):
    return {
        "provider": "openai_compatible",
        "model": "fake",
        "prompt": "hi",
        "options": {"base_url": f"{url}/v1"},
    }


def test_log_records_land_in_recent_and_in_the_task_s_own_list():
    handler = RedisLogHandler()
    logger = logging.getLogger("outside.test-logs")
    logger.addHandler(handler)
    token = current_task_id.set("task-abc")
    try:
        logger.warning("hello %s", "world")
    finally:
        current_task_id.reset(token)
        handler.flush()
        logger.removeHandler(handler)
    [recent] = [json.loads(r) for r in get_redis().lrange(keys.logs_recent(), 0, -1)]
    assert recent["message"] == "hello world" and recent["level"] == "WARNING"
    assert recent["task_id"] == "task-abc" and recent["logger"] == "outside.test-logs"
    [own] = [json.loads(r) for r in get_redis().lrange(keys.logs_task("task-abc"), 0, -1)]
    assert own["message"] == "hello world"
    assert get_redis().ttl(keys.logs_task("task-abc")) > 0


def test_recent_logs_keep_only_the_last_thousand():
    write_records(
        [
            {"at": n, "level": "INFO", "logger": "x", "message": str(n), "task_id": None}
            for n in range(RECENT_KEPT + 250)
        ]
    )
    assert get_redis().llen(keys.logs_recent()) == RECENT_KEPT
    assert json.loads(get_redis().lindex(keys.logs_recent(), 0))["message"] == str(
        RECENT_KEPT + 249
    )


def test_a_redis_outage_never_breaks_the_code_that_logs(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    handler = RedisLogHandler()
    record = logging.LogRecord("tasks", logging.ERROR, __file__, 1, "boom", None, None)
    handler.emit(record)  # returns at once; the shipping thread swallows the outage


def test_the_logs_endpoint_filters_by_task_and_level(api):
    write_records(
        [
            {"at": 1.0, "level": "INFO", "logger": "t", "message": "a", "task_id": "t1"},
            {"at": 2.0, "level": "WARNING", "logger": "t", "message": "b", "task_id": "t1"},
            {"at": 3.0, "level": "ERROR", "logger": "t", "message": "c", "task_id": "t2"},
        ]
    )
    everything = api.get("/api/v1/monitor/logs").json()["logs"]
    assert [r["message"] for r in everything] == ["c", "b", "a"]
    warnings = api.get("/api/v1/monitor/logs?level=WARNING").json()["logs"]
    assert [r["message"] for r in warnings] == ["c", "b"]
    task = api.get("/api/v1/monitor/logs?task_id=t1&limit=1").json()["logs"]
    assert [r["message"] for r in task] == ["b"]
    assert api.get("/api/v1/monitor/logs?level=LOUD").status_code == 400


def test_a_task_s_logs_appear_in_its_report(api, burst):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("ok")))
        task_id = api.post("/api/v1/tasks", body(remote.url), format="json").json()["task_id"]
        burst("remote")
    flush_logs()
    messages = [r["message"] for r in api.get(f"/api/v1/tasks/{task_id}/report").json()["logs"]]
    assert any("started on" in m for m in messages)
    assert any("completed by openai_compatible/" in m for m in messages)


@pytest.mark.slow
def test_status_and_queue_reflect_a_real_queue_and_a_real_worker(api, processes):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("slow"), delay=5), Reply(200, openai_chat("ok")))
        processes.worker("remote")
        first = api.post("/api/v1/tasks", body(remote.url), format="json").json()["task_id"]
        from tests.conftest import wait_for

        wait_for(lambda: remote.seen, what="the first task to run")
        second = api.post(
            "/api/v1/tasks", {**body(remote.url), "priority": 1}, format="json"
        ).json()["task_id"]
        third = api.post(
            "/api/v1/tasks", {**body(remote.url), "priority": 9}, format="json"
        ).json()["task_id"]
        status = api.get("/api/v1/monitor/status").json()
        assert status["redis"]["ok"] and len(status["workers"]["remote"]) == 1
        assert status["queues"]["remote"]["pending"] == 2
        assert [p["task_id"] for p in status["processing"]] == [first]
        assert status["today"]["created"] == 3 and status["gpu"]["available"] is False
        lane = api.get("/api/v1/monitor/queue").json()["lanes"]["remote"]
        assert [(p["task_id"], p["position"], p["priority"]) for p in lane["pending"]] == [
            (third, 1, 9),
            (second, 2, 1),
        ]
        assert [p["task_id"] for p in lane["processing"]] == [first]


def test_stats_count_per_day_and_provider(api, burst):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("ok", prompt_tokens=7, completion_tokens=3)))
        api.post("/api/v1/tasks", body(remote.url), format="json")
        burst("remote")
    [today, *rest] = api.get("/api/v1/monitor/stats?days=3").json()["days"]
    assert len(rest) == 2
    assert today["created"] == 1 and today["completed"] == 1
    assert today["completed:openai_compatible"] == 1
    assert (today["tokens_in"], today["tokens_out"]) == (7, 3)


def test_metrics_speak_prometheus_and_need_a_key(client, api, burst, settings):
    assert client.get("/metrics").status_code == 401
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("ok", completion_tokens=3)))
        api.post("/api/v1/tasks", body(remote.url), format="json")
        burst("remote")
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_KEY}").content.decode()
    assert 'sop_llm_tasks_total{status="completed",provider="openai_compatible"} 1' in text
    assert "sop_llm_tokens_out_total 3" in text
    assert 'sop_llm_task_duration_milliseconds_bucket{le="+Inf"} 1' in text
    assert 'sop_llm_queue_depth{lane="remote"} 0' in text
    settings.METRICS_TOKEN = "scrape-only-token"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-only-token").status_code == 200


def test_metrics_gauge_what_is_running_who_runs_it_and_whether_redis_answers(
    client, settings, processes
):
    from sop_llm.core import keys
    from sop_llm.core.redis import get_redis

    processes.worker("remote")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
    get_redis().hset(keys.queue_processing("gpu"), "ghost-task", "ghost-worker")
    get_redis().hset(
        keys.session("ghost-task"),
        mapping={
            "task_id": "ghost-task",
            "status": "processing",
            "lane": "gpu",
            "provider": "local",
            "model": "m",
        },
    )
    text = client.get("/metrics", **auth).content.decode()
    assert "sop_llm_redis_up 1" in text
    assert 'sop_llm_tasks_processing{lane="gpu"} 1' in text
    assert "sop_llm_tasks_stuck 1" in text  # nobody runs it: an alert can say so
    assert 'sop_llm_workers_live{lane="remote"} 1' in text
    assert 'sop_llm_workers_live{lane="gpu"} 0' in text
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    down = client.get("/metrics", **auth)
    assert down.status_code == 200 and "sop_llm_redis_up 0" in down.content.decode()


async def _connect(path="/ws/monitor", headers=None):
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, code = await communicator.connect()
    return communicator, connected, code


def test_the_websocket_closes_with_4401_after_the_handshake_without_a_key():
    # Closing before the handshake would be an HTTP 403 that browsers report with no code.
    async def scenario():
        for path, headers in [
            ("/ws/monitor", []),
            ("/ws/monitor?token=wrong", []),
            ("/ws/monitor", [(b"authorization", b"Bearer nope")]),
        ]:
            communicator, connected, _ = await _connect(path, headers)
            assert connected
            assert await communicator.receive_output(timeout=5) == {
                "type": "websocket.close",
                "code": 4401,
            }

    asyncio.run(scenario())


def test_events_published_by_a_worker_arrive_at_a_connected_client():
    async def scenario():
        communicator, connected, _ = await _connect(
            headers=[(b"authorization", f"Bearer {API_KEY}".encode())]
        )
        assert connected
        await asyncio.sleep(0)  # let the subscription settle before publishing
        await asyncio.to_thread(publish, "task.queued", task_id="t-1", lane="remote")
        event = json.loads(await communicator.receive_from(timeout=5))
        assert event["type"] == "task.queued" and event["task_id"] == "t-1"
        await communicator.disconnect()

    asyncio.run(scenario())


def test_a_client_filter_keeps_only_what_it_asked_for():
    async def scenario():
        communicator, connected, _ = await _connect(f"/ws/monitor?token={API_KEY}")
        assert connected
        await communicator.send_to(json.dumps({"types": ["task.token"], "task_id": "t-2"}))
        assert json.loads(await communicator.receive_from(timeout=5))["type"] == "filter.ok"

        def produce():
            publish("task.started", task_id="t-2")
            publish("task.token", task_id="t-1", text="not mine")
            stream = TokenStream("t-2")
            stream("Hel")
            stream("lo")
            stream.close()

        await asyncio.to_thread(produce)
        got = ""
        while got != "Hello":
            event = json.loads(await communicator.receive_from(timeout=5))
            assert event["type"] == "task.token" and event["task_id"] == "t-2"
            got += event["text"]
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    asyncio.run(scenario())


def test_log_records_reach_websocket_clients_as_log_events():
    async def scenario():
        communicator, _, _ = await _connect(f"/ws/monitor?token={API_KEY}")
        await asyncio.to_thread(
            write_records,
            [{"at": 1.0, "level": "INFO", "logger": "x", "message": "hi", "task_id": None}],
        )
        event = json.loads(await communicator.receive_from(timeout=5))
        assert event["type"] == "log" and event["message"] == "hi"
        await communicator.disconnect()

    asyncio.run(scenario())
