"""A GPU lock passes between hosts by its lease, never by a local pid.

Each worker process here claims a hostname of its own (SOP_LLM_HOSTNAME), so its pid means
nothing to the others: how a worker on another machine looks from this one. A worker's task
rerun on another host, on real hosts (network namespaces), is tests/test_hosts.py. The
takeover time is printed (run with -s); docs/RELIABILITY.md has it.
"""

import json
import os
import signal
import sys
import time

import pytest

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


def _host_env(host: str, gpu_id: str) -> dict:
    return {"SOP_LLM_HOSTNAME": host, "GPU_ID": gpu_id}


def _kill(proc) -> float:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.monotonic()


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
            "tasks.worker.workers.GpuWorker",
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
