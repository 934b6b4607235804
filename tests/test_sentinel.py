"""Redis Sentinel: every client finds the master through the Sentinels and follows a failover.

A real deployment on loopback ports (bench/cluster.py): redis-server master + two replicas + three
Sentinels, passwords on both. The service's processes get REDIS_SENTINELS and no REDIS_URL.
"""

import os
import subprocess
import sys

import pytest
import requests

from bench.cluster import SentinelCluster, redis_binary
from bench.common import Service
from bench.failover import failover_run
from tests.conftest import API_KEY, ROOT, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat

AUTH = {"Authorization": f"Bearer {API_KEY}"}
needs_redis_server = pytest.mark.skipif(
    redis_binary() is None,
    reason="redis-server is not installed: the Sentinel tests need real redis-server processes",
)


@pytest.fixture
def cluster(tmp_path):
    with SentinelCluster(tmp_path) as running:
        yield running


@pytest.fixture
def through_sentinels(cluster):
    """This process's clients go through the cluster's Sentinels until the test ends (undone
    before the cluster stops, so the key clean-up goes to the usual Redis)."""
    from django.test import override_settings

    env = cluster.env()
    values = {name: env[name] for name in env if name != "REDIS_URL"}
    values["REDIS_SENTINELS"] = cluster.sentinel_addresses
    with override_settings(**values):
        yield cluster


def _check(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env,message",
    [
        (
            {"REDIS_URL": "", "REDIS_SENTINELS": "10.0.0.5", "REDIS_SENTINEL_MASTER": "m"},
            "REDIS_SENTINELS: '10.0.0.5' is not host:port",
        ),
        ({"REDIS_URL": "", "REDIS_SENTINELS": "10.0.0.5:26379"}, "REDIS_SENTINEL_MASTER must"),
        (
            {"REDIS_SENTINELS": "10.0.0.5:26379", "REDIS_SENTINEL_MASTER": "m"},
            "set REDIS_URL or REDIS_SENTINELS, not both",
        ),
    ],
)
def test_a_bad_sentinel_setting_stops_start_up_with_one_line_naming_it(env, message):
    run = _check(**env)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr


@needs_redis_server
def test_with_sentinels_nothing_starts_an_embedded_redis(cluster, monkeypatch):
    import runpy

    for name, value in cluster.env().items():
        monkeypatch.setenv(name, value)
    values = runpy.run_path(str(ROOT / "sop_llm" / "settings.py"))
    assert values["REDIS_EMBEDDED"] is False
    assert values["RQ_QUEUES"][f"{values['REDIS_KEY_PREFIX']}gpu"]["MASTER_NAME"] == "sop"


@needs_redis_server
def test_the_clients_reach_the_master_through_password_protected_sentinels(through_sentinels):
    from sop_llm.core.redis import get_redis, get_rq_redis, redis_ping

    cluster = through_sentinels
    get_redis().set("sentinel-probe", "ok")
    assert cluster.client().get("sentinel-probe") == "ok"  # it went to the real master
    assert get_rq_redis().get("sentinel-probe") == b"ok"
    assert redis_ping() is None


@needs_redis_server
@pytest.mark.parametrize("client", ["get_redis", "get_rq_redis"])
def test_a_read_cut_short_never_hands_its_reply_to_the_next_command(through_sentinels, client):
    """A timed-out read leaves a reply on its way; redis-py's Sentinel connection would keep
    the connection, and the next command would read that reply (redis/redis-py#4292)."""
    import redis

    from sop_llm.core import redis as clients

    conn = getattr(clients, client)()
    conn.set("probe", "value")
    with pytest.raises(redis.TimeoutError):
        conn.blpop(["nothing-comes"], timeout=1.5)  # past the client's 0.8 s read timeout
    assert conn.get("probe") in ("value", b"value")
    assert conn.ping() is True


@needs_redis_server
def test_a_task_no_replica_confirms_in_time_is_a_503_not_a_202(through_sentinels, settings, api):
    settings.REDIS_WAIT_REPLICAS = 3  # the deployment has two replicas
    response = api.post(
        "/api/v1/tasks", {"provider": "openai", "model": "m", "prompt": "x"}, format="json"
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert (
        error["code"] == "not_replicated" and "only 2 of REDIS_WAIT_REPLICAS=3" in error["message"]
    )


@needs_redis_server
def test_a_task_one_replica_confirmed_is_a_202(through_sentinels, settings, api):
    settings.REDIS_WAIT_REPLICAS = 1
    response = api.post(
        "/api/v1/tasks", {"provider": "openai", "model": "m", "prompt": "x"}, format="json"
    )
    assert response.status_code == 202


@pytest.mark.slow
@needs_redis_server
def test_killing_the_master_under_load_costs_503s_for_seconds_and_no_acknowledged_task(
    cluster, redis_prefix
):
    """Web and a worker through the Sentinels; the master is SIGKILLed under a stream of POSTs.
    Meanwhile every POST is answered (202 or 503, never a 500 or a hang); after the
    promotion POSTs succeed again with nothing restarted; with REDIS_WAIT_REPLICAS=1 no task
    acknowledged with a 202 is missing; the worker carries on with new tasks."""
    svc = Service(
        redis_url="",
        key=API_KEY,
        prefix=redis_prefix,
        extra_env={**cluster.env(), "REDIS_WAIT_REPLICAS": "1", "LOG_LEVEL": "ERROR"},
    )
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("after the failover")))
        try:
            svc.web()
            svc.worker("remote", "remote", LOG_LEVEL="WARNING")  # shown if the test fails
            assert _finish(svc, remote.url)["status"] == "completed"
            measured = failover_run(cluster, svc, wait_replicas=1)
            print(f"\nfailover (REDIS_WAIT_REPLICAS=1): {measured}")
            assert set(measured["gap_answers"]) <= {"202", "503"}, measured
            assert measured["promoted"] and measured["lost"] == 0, measured
            task = _finish(svc, remote.url)  # the worker reconnected to the new master
            assert task["status"] == "completed" and task["result"]["text"] == "after the failover"
        finally:
            svc.stop_all()


def _finish(svc: Service, remote_url: str) -> dict:
    body = {
        "provider": "openai_compatible",
        "model": "fake-llm",
        "prompt": "hello",
        "options": {"base_url": f"{remote_url}/v1"},
        "wait": 30,  # the async wait: a pub/sub subscription through the Sentinels too
        "priority": 100,  # ahead of the stream's tasks still queued
    }
    response = requests.post(f"{svc.url}/api/v1/tasks", json=body, headers=AUTH, timeout=40)
    assert response.status_code in (200, 202), response.text
    task_id = response.json()["task_id"]

    def final():
        task = requests.get(f"{svc.url}/api/v1/tasks/{task_id}", headers=AUTH, timeout=5).json()
        return task if task["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(final, what=f"task {task_id} to finish", timeout=30)
