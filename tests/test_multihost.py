"""GPU workers on other hosts: liveness is judged by heartbeats and leases, never a local pid.

Each worker process here claims a hostname of its own (SOP_LLM_HOSTNAME), so its pid means
nothing to the others: exactly how a worker on another machine looks from this one. The
takeover times are printed (run with -s); docs/RELIABILITY.md has them.
"""

import json
import os
import signal
import sys
import time

import pytest
import requests

from sop_llm import keys
from sop_llm.redis import get_redis
from tasks import queue, store
from tests.conftest import API_KEY, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _host_env(host: str, gpu_id: str) -> dict:
    return {"SOP_LLM_HOSTNAME": host, "GPU_ID": gpu_id}


def _submit_long(base: str) -> str:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": "Once upon a time",
        "params": {"max_tokens": 200, "temperature": 0.8},
    }
    response = requests.post(f"{base}/api/v1/tasks", headers=AUTH, timeout=5, json=body)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def _host_of(worker: str) -> str | None:
    record = get_redis().get(keys.worker_alive(worker))
    return json.loads(record)["host"] if record else None


def _kill(proc) -> float:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.monotonic()


def test_a_gpu_worker_killed_on_host_b_has_its_task_rerun_on_host_c(processes):
    base = processes.web()
    on_b = processes.worker("gpu", gpu=True, **_host_env("host-b", "host-b:0"))
    task_id = _submit_long(base)
    running = wait_for(
        lambda: (t := store.load(task_id)).status == "processing" and t, what="B to start it"
    )
    assert _host_of(running.worker) == "host-b"
    processes.worker("gpu", gpu=True, **_host_env("host-c", "host-c:0"))
    killed_at = _kill(on_b)
    rerun = wait_for(
        lambda: (
            (t := store.load(task_id)).status == "processing" and t.worker != running.worker and t
        ),
        what="another host to take the task over",
    )
    takeover = time.monotonic() - killed_at
    assert _host_of(rerun.worker) == "host-c" and rerun.crash_count == 1
    assert queue.processing("gpu") == {task_id: rerun.worker}  # B's claim is gone
    # That the rerun then completes is test_reliability's killed-GPU-worker test (same path).
    print(f"\nGPU worker on host-b killed: host-c runs its task {takeover:.1f} s later")


def test_a_gpu_lock_held_on_host_b_passes_to_host_c_once_b_stops_renewing_it(processes):
    shared = "shared-gpu"  # two containers on different hosts' names, one physical GPU
    on_b = processes.worker("gpu", gpu=True, **_host_env("host-b", shared))
    holder = json.loads(get_redis().get(keys.gpu_lock(shared)))
    assert holder["host"] == "host-b"
    processes.start(  # waits for the GPU: no liveness record until it holds the lock
        [
            sys.executable,
            "manage.py",
            "rqworker",
            "--worker-class",
            "tasks.worker.GpuWorker",
            f"{processes.prefix}gpu",
        ],
        **_host_env("host-c", shared),
    )
    killed_at = _kill(on_b)
    wait_for(
        lambda: '"host-c"' in (get_redis().get(keys.gpu_lock(shared)) or ""),
        what="host C to get the GPU",
    )
    takeover = time.monotonic() - killed_at
    wait_for(
        lambda: any(
            '"host-c"' in (get_redis().get(k) or "")
            for k in get_redis().keys(keys.worker_alive("*"))
        ),
        what="host C's worker to announce itself",
    )
    print(f"\nGPU lock of a killed holder on host-b taken by host-c {takeover:.1f} s later")
