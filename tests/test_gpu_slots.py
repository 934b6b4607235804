"""Continuous batching in the GPU worker: several local tasks in flight, each whole."""

import os
import signal

import pytest
import requests

from tasks import queue, store
from tests.conftest import API_KEY, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _submit(base: str, max_tokens: int = 24, **extra) -> str:
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": "Write a short story about a lighthouse keeper.",
        "params": {"max_tokens": max_tokens, "temperature": 0.8, "seed": 7},
        **extra,
    }
    response = requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def _final(task_id: str) -> store.Task | None:
    task = store.load(task_id)
    return task if task.final else None


def _report(base: str, task_id: str) -> dict:
    return requests.get(f"{base}/api/v1/tasks/{task_id}/report", headers=AUTH, timeout=10).json()


@pytest.fixture
def service(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True, GPU_SLOTS="4")
    return base


def test_four_local_tasks_run_together_in_one_batch(service):
    ids = [_submit(service, max_tokens=32) for _ in range(4)]
    tasks = [wait_for(lambda t=t: _final(t), what="the batch", timeout=180) for t in ids]
    assert all(t.status == "completed" for t in tasks)
    assert max(t.started_at for t in tasks) < min(t.completed_at for t in tasks)  # overlap
    reports = [_report(service, t) for t in ids]
    assert max(r["timings"]["batch_size_max"] for r in reports) > 1
    assert all(0 < t.usage["completion_tokens"] <= 32 for t in tasks)
    assert all(r["reproducibility"]["gpu_slots"] == 4 for r in reports)


def test_a_cancelled_slot_stops_while_the_others_finish(service):
    ids = [_submit(service, max_tokens=48) for _ in range(4)]
    wait_for(lambda: len(queue.processing("gpu")) == 4, what="four slots busy", timeout=120)
    requests.post(f"{service}/api/v1/tasks/{ids[0]}/cancel", headers=AUTH, timeout=10)
    tasks = [wait_for(lambda t=t: _final(t), what="the batch", timeout=180) for t in ids]
    assert [t.status for t in tasks] == ["cancelled", "completed", "completed", "completed"]


def test_a_higher_priority_task_takes_the_next_free_slot(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True, GPU_SLOTS="2")
    busy = [_submit(base, max_tokens=40) for _ in range(2)]
    wait_for(lambda: len(queue.processing("gpu")) == 2, what="both slots busy", timeout=120)
    low = _submit(base, max_tokens=8, priority=0)
    high = _submit(base, max_tokens=8, priority=50)
    tasks = {
        t: wait_for(lambda t=t: _final(t), what="all", timeout=240) for t in [*busy, low, high]
    }
    assert tasks[high].started_at < tasks[low].started_at


def test_a_task_needing_a_larger_context_runs_once_the_batch_drains_before_later_ones(
    processes,
):
    """The loaded model's name matches but its n_ctx does not cover the task: it waits for the
    running slots to finish, is loaded for, and the same-model tasks queued after it wait too
    instead of keeping the old load busy."""
    base = processes.web()
    processes.worker("gpu", gpu=True, GPU_SLOTS="4")
    busy = [_submit(base, max_tokens=40) for _ in range(2)]
    wait_for(lambda: len(queue.processing("gpu")) == 2, what="two slots busy", timeout=120)
    larger = _submit(base, max_tokens=8, options={"load": {"n_ctx": 8192}})
    later = [_submit(base, max_tokens=24) for _ in range(3)]
    tasks = {t: wait_for(lambda t=t: _final(t), what="all", timeout=240) for t in busy + later}
    first = wait_for(lambda: _final(larger), what="the larger one", timeout=240)
    assert first.status == "completed" and all(t.status == "completed" for t in tasks.values())
    assert first.completed_at < min(tasks[t].completed_at for t in later)
    assert _report(base, larger)["timings"]["load_ms"] > 0  # it was loaded for


def test_a_gpu_worker_killed_with_four_in_flight_leaves_none_stuck(processes):
    base = processes.web()
    victim = processes.worker("gpu", gpu=True, GPU_SLOTS="4")
    ids = [_submit(base, max_tokens=200) for _ in range(4)]
    wait_for(lambda: len(queue.processing("gpu")) == 4, what="four slots busy", timeout=120)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    processes.worker("gpu", gpu=True, GPU_SLOTS="4")  # recovers all four and runs them again
    tasks = [wait_for(lambda t=t: _final(t), what="the reruns", timeout=300) for t in ids]
    assert all(t.status == "completed" and t.crash_count == 1 for t in tasks)
    assert not queue.processing("gpu")


def test_a_sigterm_lets_every_slot_finish_and_leaves_the_queued_tasks_queued(processes):
    base = processes.web()
    worker = processes.worker("gpu", gpu=True, GPU_SLOTS="4")
    running = [_submit(base, max_tokens=60) for _ in range(4)]
    wait_for(lambda: len(queue.processing("gpu")) == 4, what="four slots busy", timeout=120)
    waiting = [_submit(base, max_tokens=8) for _ in range(2)]
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=180) == 0
    assert [store.load(t).status for t in running] == ["completed"] * 4
    assert [store.load(t).status for t in waiting] == ["queued"] * 2
    processes.worker("gpu", gpu=True, GPU_SLOTS="4")
    tasks = [wait_for(lambda t=t: _final(t), what="the queued ones", timeout=180) for t in waiting]
    assert all(t.status == "completed" and t.crash_count == 0 for t in tasks)


@pytest.mark.parametrize("max_tokens", [1024, 2000])
def test_an_answer_that_cannot_fit_a_slot_is_refused_at_submit(api, max_tokens, settings):
    settings.GPU_SLOTS = 4  # gemma's preset n_ctx 4096: 1024 tokens a slot
    body = {
        "provider": "local",
        "model": "gemma",
        "prompt": "hi",
        "params": {"max_tokens": max_tokens},
    }
    response = api.post("/api/v1/tasks", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "params.max_tokens" and "each holds 1024 tokens" in error["message"]
