"""The GPU worker process: local tasks end to end, the Models API, and GPU exclusivity."""

import os
import signal
import sys

import pytest
import requests

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import store
from tests.conftest import API_KEY, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def post_task(base: str, **extra) -> str:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": "The capital of France is",
        "params": {"max_tokens": 12, "temperature": 0, "seed": 3},
        **extra,
    }
    response = requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def finished(base: str, task_id: str) -> dict:
    def done():
        task = requests.get(f"{base}/api/v1/tasks/{task_id}", headers=AUTH, timeout=5).json()
        return task if task["status"] in ("completed", "failed", "cancelled") else None

    return wait_for(done, what=f"task {task_id}", timeout=60)


def report(base: str, task_id: str) -> dict:
    return requests.get(f"{base}/api/v1/tasks/{task_id}/report", headers=AUTH, timeout=5).json()


def test_local_tasks_over_http_load_once_then_take_the_hot_path(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    first = finished(base, post_task(base))
    assert first["status"] == "completed" and first["result"]["text"]
    assert first["usage"]["completion_tokens"] == 12 and first["model"] == "gemma-3-270m-q4_k_m"
    second = finished(base, post_task(base))
    one, two = report(base, first["task_id"]), report(base, second["task_id"])
    assert one["timings"]["hot_path"] is False and one["timings"]["load_ms"] > 0
    assert two["timings"]["hot_path"] is True and two["timings"]["load_ms"] == 0
    assert two["timings"]["tokens_per_second"] > 0
    repro = two["reproducibility"]
    assert repro["gguf_sha256"].startswith("a5fd3b62") and repro["seed"] == 3
    assert repro["load_params"]["chat_format"] == "transcript"
    assert [e["event"] for e in two["timeline"]] == [
        "created",
        "dequeued",
        "attempt",
        "model",
        "completed",
    ]


def test_the_models_api_loads_reports_and_unloads_on_the_gpu_worker(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    loaded = requests.post(
        f"{base}/api/v1/models/load",
        json={"model": "gemma", "n_ctx": 1024},
        headers=AUTH,
        timeout=60,
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["outcome"] == "loaded" and loaded.json()["load_ms"] > 0
    status = requests.get(f"{base}/api/v1/models/status", headers=AUTH, timeout=5).json()
    assert status["loaded"]["name"] == "gemma-3-270m-q4_k_m"
    assert status["loaded"]["params"]["n_ctx"] == 1024 and status["gpu"]["available"] is False
    again = requests.post(
        f"{base}/api/v1/models/load",
        json={"model": "gemma", "n_ctx": 512},
        headers=AUTH,
        timeout=60,
    ).json()
    assert again["outcome"] == "already_loaded"  # a 1024 context serves a 512 request
    unloaded = requests.post(f"{base}/api/v1/models/unload", json={}, headers=AUTH, timeout=60)
    assert unloaded.json()["outcome"] == "unloaded"
    freed = unloaded.json()["freed"]
    assert freed["rss_before_mb"] - freed["rss_after_mb"] > 150
    status = requests.get(f"{base}/api/v1/models/status", headers=AUTH, timeout=5).json()
    assert status["loaded"] is None


@pytest.mark.parametrize("name", ["../models/gemma", "/etc/passwd", "nope"])
def test_loading_something_outside_the_catalog_is_a_400(api, name):
    response = api.post("/api/v1/models/load", {"model": name}, format="json")
    assert response.status_code == 400 and response.json()["error"]["field"] == "model"


def test_a_load_that_does_not_fit_fails_the_task_and_the_worker_lives_on(processes):
    base = processes.web()
    short = '{"memory_total_mb": 8000, "memory_used_mb": 7700, "memory_free_mb": 300}'
    worker = processes.worker(
        "gpu", gpu=True, GPU_READER="tests.fakes.gpu.FakeGpuReader", FAKE_GPU=short
    )
    task = finished(base, post_task(base))
    assert task["status"] == "failed" and task["error"]["code"] == "insufficient_vram"
    assert "300 MB free of 8000 MB" in task["error"]["message"]
    assert worker.poll() is None
    refused = requests.post(
        f"{base}/api/v1/models/load", json={"model": "gemma"}, headers=AUTH, timeout=60
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "insufficient_vram"


def test_two_gpu_workers_never_generate_at_once_and_the_second_takes_over(processes):
    # One task at a time per worker, so overlapping spans could only come from two workers.
    first = processes.worker("gpu", gpu=True, GPU_SLOTS="1")
    second = processes.start(
        [
            sys.executable,
            "manage.py",
            "rqworker",
            "--worker-class",
            "tasks.worker.workers.GpuWorker",
            f"{processes.prefix}gpu",
        ],
        GPU_SLOTS="1",
    )
    holder = wait_for(lambda: get_redis().get(keys.gpu_lock(0)), what="the GPU lock")
    assert str(first.pid) in holder
    from tests.test_workers import _final

    ids = [_submit_local(24), _submit_local(24), _submit_local(400), _submit_local(24)]
    for task_id in ids[:2]:
        wait_for(lambda t=task_id: _final(t), what="first tasks", timeout=60)
    wait_for(lambda: store.load(ids[2]).status == "processing", what="the long task")
    os.kill(first.pid, signal.SIGKILL)  # mid-generation
    first.wait()
    tasks = [wait_for(lambda t=t: _final(t), what="takeover", timeout=90) for t in ids]
    assert str(second.pid) in get_redis().get(keys.gpu_lock(0))
    spans = sorted((t.started_at, t.completed_at or t.failed_at) for t in tasks)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end  # never two generations at once
    assert all(t.status == "completed" for t in tasks)
    assert store.load(ids[2]).crash_count == 1  # requeued by the second worker
    workers = [store.load(t).worker for t in ids]
    assert workers[0] == workers[1] != workers[2] == workers[3]


def _submit_local(max_tokens: int) -> str:
    from tasks.serializers import TaskCreateSerializer
    from tasks.services import task_create

    serializer = TaskCreateSerializer(
        data={
            "provider": "local",
            "model": "gemma",
            "prompt": "Count: 1, 2,",
            "params": {"max_tokens": max_tokens, "temperature": 0, "seed": 1},
        }
    )
    serializer.is_valid(raise_exception=True)
    return task_create(data=serializer.validated_data, idempotency_key=None, owner="t")[0][
        "task_id"
    ]


def test_a_cancelled_running_task_keeps_what_it_generated(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    task_id = post_task(base, prompt="Once upon a time", params={"max_tokens": 400})
    tokens = get_redis().pubsub(ignore_subscribe_messages=True)
    tokens.subscribe(keys.pubsub_task_tokens(task_id))  # before the model has even loaded
    wait_for(lambda: tokens.get_message(timeout=1), what="the first tokens", timeout=60)
    tokens.close()
    requests.post(f"{base}/api/v1/tasks/{task_id}/cancel", headers=AUTH, timeout=5)
    task = finished(base, task_id)
    assert task["status"] == "cancelled"
    assert task["result"]["text"] and task["result"]["finish_reason"] == "cancelled"
    assert 0 < task["usage"]["completion_tokens"] < 400
