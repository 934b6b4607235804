"""Every attempt is charged: truncated, failed, cancelled and killed ones cost GPU time too,
so they count against tokens_per_day, in usage and metrics, and show in the report."""

import os
import signal

import pytest
import requests

from models_gpu.guard import gpu_guard
from tasks import store
from tasks.worker.recovery import tasks_recover
from tests.conftest import wait_for
from tests.keyring import client_with, issue

pytestmark = pytest.mark.slow

PERSON = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "age"],
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
}


@pytest.fixture(autouse=True)
def fresh_guard():
    """The in-process GPU guard of a burst must not hold the GPU from a later worker."""
    yield
    gpu_guard().shutdown()


def truncated_body(max_tokens: int = 5) -> dict:
    """A structured task that max_tokens cuts short: it fails `truncated` after generating."""
    return {
        "provider": "local",
        "model": "gemma",
        "prompt": "Describe a person as JSON.",
        "params": {"max_tokens": max_tokens, "temperature": 0, "seed": 1},
        "response_format": {"type": "json_schema", "json_schema": {"schema": PERSON}},
    }


def test_truncated_attempts_use_up_tokens_per_day_and_the_key_is_then_refused(burst, api):
    record, key = issue("tasks", name="thrifty-json", tokens_per_day=60)
    client, statuses = client_with(key), []
    for _ in range(6):
        created = client.post("/api/v1/tasks", truncated_body(), format="json")
        statuses.append(created.status_code)
        if created.status_code != 202:
            break
        burst("gpu")
        task = client.get(f"/api/v1/tasks/{created.json()['task_id']}").json()
        assert task["error"]["code"] == "truncated", task
    assert statuses[-1] == 429, statuses  # not six free GPU runs
    assert created.json()["error"]["code"] == "limit_tokens_per_day"
    [row] = client.get("/api/v1/usage").json()["usage"]
    assert row["completion_tokens"] == 5 * (len(statuses) - 1)
    assert row["prompt_tokens"] > 0 and row["generation_seconds"] > 0
    metrics = api.get("/metrics").content.decode()
    labels = f'key="thrifty-json",key_id="{record["id"]}",model="gemma-3-270m-q4_k_m"'
    assert f"sop_llm_key_completion_tokens_total{{{labels}}} {row['completion_tokens']}" in metrics


def test_the_report_of_a_truncated_task_keeps_its_text_so_far_usage_and_timings(api, burst):
    task_id = api.post("/api/v1/tasks", truncated_body(), format="json").json()["task_id"]
    burst("gpu")
    report = api.get(f"/api/v1/tasks/{task_id}/report").json()
    assert report["status"] == "failed" and report["error"]["code"] == "truncated"
    assert report["result"]["finish_reason"] == "length"
    assert report["result"]["text"].startswith("{")
    usage = report["usage"]
    assert usage["completion_tokens"] == 5 and usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5
    assert report["timings"]["generation_ms"] > 0
    [attempt] = report["attempts"]
    assert attempt["completion_tokens"] == 5 and attempt["prompt_tokens"] == usage["prompt_tokens"]
    assert report["charged"]["total_tokens"] == usage["total_tokens"]
    assert report["charged"]["attempts"] == 1


def test_local_usage_is_one_row_per_catalog_model_whatever_alias_was_asked(burst):
    _, key = issue("tasks", name="aliases")
    client = client_with(key)
    for model in ("gemma", "gemma-3-270m-q4_k_m"):
        body = {"provider": "local", "model": model, "prompt": "Hi", "params": {"max_tokens": 2}}
        assert client.post("/api/v1/tasks", body, format="json").status_code == 202
    burst("gpu")
    [row] = client.get("/api/v1/usage").json()["usage"]
    assert row["model"] == "gemma-3-270m-q4_k_m" and row["tasks"] == 2


def _long_local_task(base: str, key: str) -> str:
    body = {"provider": "local", "model": "gemma", "prompt": "Once upon a time"}
    body["params"] = {"max_tokens": 400, "temperature": 0, "seed": 1}
    headers = {"Authorization": f"Bearer {key}"}
    created = requests.post(f"{base}/api/v1/tasks", json=body, headers=headers, timeout=10)
    task_id = created.json()["task_id"]
    wait_for(lambda: _progress(task_id) >= 3, what="a few tokens", timeout=120)
    return task_id


def _progress(task_id: str) -> int:
    return (store.load(task_id).progress or {}).get("tokens", 0)


def test_a_killed_run_is_in_its_attempts_counted_as_a_crash_and_charged(processes, settings):
    settings.TASK_MAX_ATTEMPTS = 1  # the killed run is its last: it fails worker_lost
    base, victim = processes.web(), processes.worker("gpu", gpu=True)
    _, key = issue("tasks", name="killed")
    task_id = _long_local_task(base, key)
    os.kill(victim.pid, signal.SIGKILL)  # mid-generation
    victim.wait()
    generated = _progress(task_id)
    tasks_recover()
    task = store.load(task_id)
    assert task.status == "failed" and task.error["code"] == "worker_lost"
    assert task.crash_count == 1
    [killed] = task.attempts
    assert killed["outcome"] == "killed" and killed["completion_tokens"] == generated
    assert task.charged["completion_tokens"] == generated
    [row] = client_with(key).get("/api/v1/usage").json()["usage"]
    assert row["completion_tokens"] == generated


def test_a_cancelled_running_task_reports_its_prompt_tokens(processes):
    base, _ = processes.web(), processes.worker("gpu", gpu=True)
    _, key = issue("tasks", name="cancels")
    task_id = _long_local_task(base, key)
    client_with(key).post(f"/api/v1/tasks/{task_id}/cancel")
    wait_for(lambda: store.load(task_id).final, what="the cancel", timeout=60)
    report = client_with(key).get(f"/api/v1/tasks/{task_id}/report").json()
    assert report["status"] == "cancelled"
    usage = report["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] >= 3
    assert report["charged"]["prompt_tokens"] == usage["prompt_tokens"]
