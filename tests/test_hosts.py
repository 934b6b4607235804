"""The service across real hosts: network namespaces with addresses and hostnames of their own.

The web on one host, GPU workers on two others, Redis (a master, two replicas and three
Sentinels, real `redis-server` processes) on the bridge's address in the root namespace; every
process finds Redis through the Sentinels only. Nothing here shares a loopback interface or a
pid space with anything else in the deployment, as on separate machines. Skipped, saying why,
where the machine forbids namespaces (tests/test_sentinel.py covers Sentinel on loopback
anyway). Takeover times are printed (run with -s); docs/RELIABILITY.md has them.
"""

import json
import os
import signal
import time

import pytest
import requests

from bench.cluster import SentinelCluster, redis_binary
from bench.hosts import HostedService, Hosts, namespaces_unavailable
from sop_llm.core import keys
from tests.conftest import wait_for

WHY_NOT = namespaces_unavailable() or (None if redis_binary() else "redis-server not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY_NOT is not None, reason=f"{WHY_NOT}")]
PLACEMENT = {"web": "web", "gpu-b": "host-b", "gpu-c": "host-c"}


@pytest.fixture
def deployment(tmp_path, redis_prefix):
    with (
        Hosts(["web", "host-b", "host-c"]) as hosts,
        SentinelCluster(tmp_path, host=hosts.gateway) as cluster,
    ):
        svc = HostedService(
            hosts, PLACEMENT, redis_url="", prefix=redis_prefix, extra_env=cluster.env()
        )
        try:
            svc.web()
            yield svc, cluster
        finally:
            svc.stop_all()


def _submit(svc: HostedService, max_tokens: int) -> str:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": "Once upon a time",
        "params": {"max_tokens": max_tokens, "temperature": 0.8},
    }
    response = requests.post(f"{svc.url}/api/v1/tasks", headers=svc.headers, json=body, timeout=5)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def _task(svc: HostedService, task_id: str) -> dict:
    """Its report: the task with the worker that has it and its crash count."""
    url = f"{svc.url}/api/v1/tasks/{task_id}/report"
    return requests.get(url, headers=svc.headers, timeout=5).json()


def _host_of(cluster: SentinelCluster, worker: str) -> str | None:
    record = cluster.client().get(keys.worker_alive(worker))
    return json.loads(record)["host"] if record else None


def _gpu_worker(svc: HostedService, cluster: SentinelCluster, name: str) -> None:
    """Start it on its host; return once it announced itself from there."""
    svc.worker(name, "gpu", GPU_ID=PLACEMENT[name])
    wait_for(
        lambda: any(
            f'"{PLACEMENT[name]}"' in (cluster.client().get(key) or "")
            for key in cluster.client().keys(keys.worker_alive("*"))
        ),
        what=f"the GPU worker on {PLACEMENT[name]}",
        timeout=60,
    )


def test_a_gpu_worker_killed_on_host_b_has_its_task_finished_on_host_c(deployment):
    svc, cluster = deployment
    _gpu_worker(svc, cluster, "gpu-b")
    task_id = _submit(svc, max_tokens=200)
    running = wait_for(
        lambda: (t := _task(svc, task_id))["status"] == "processing" and t,
        what="host-b to start it",
    )
    assert _host_of(cluster, running["worker"]) == "host-b"
    _gpu_worker(svc, cluster, "gpu-c")
    os.kill(svc.procs.pop("gpu-b").pid, signal.SIGKILL)
    killed_at = time.monotonic()
    rerun = wait_for(
        lambda: (t := _task(svc, task_id))["worker"] not in (None, running["worker"]) and t,
        what="another host to take the task over",
    )
    takeover = time.monotonic() - killed_at
    done = wait_for(
        lambda: (t := _task(svc, task_id))["status"] in ("completed", "failed") and t,
        what="the rerun to finish",
        timeout=120,
    )
    assert done["status"] == "completed" and done["usage"]["completion_tokens"] > 0
    assert done["crash_count"] == 1 and _host_of(cluster, rerun["worker"]) == "host-c"
    print(f"\nGPU worker on host-b killed: host-c took its task over {takeover:.1f} s later")


def test_workers_on_other_hosts_carry_on_through_a_redis_failover(deployment):
    svc, cluster = deployment
    _gpu_worker(svc, cluster, "gpu-b")
    before = _submit(svc, max_tokens=8)
    wait_for(lambda: _task(svc, before)["status"] == "completed", what="a task", timeout=60)
    old = cluster.kill_master()
    cluster.wait_failover(old)
    after = wait_for(lambda: _submitted_in_time(svc), what="a POST to succeed", timeout=30)
    done = wait_for(
        lambda: _task(svc, after)["status"] in ("completed", "failed") and _task(svc, after),
        what="the task after the failover",
        timeout=60,
    )
    assert done["status"] == "completed", done


def _submitted_in_time(svc: HostedService) -> str | None:
    try:
        return _submit(svc, max_tokens=8)
    except AssertionError:  # a 503 while the clients find the new master
        return None
