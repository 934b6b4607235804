"""Operator commands against real Redis: human output checked, --json parsed."""

import io
import json
import subprocess
import sys
import time

import pytest
from django.core.management import CommandError, call_command

from tasks import queue, store
from tests.conftest import ROOT, child_env


def run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


def run_json(*args):
    return json.loads(run(*args, "--json"))


def submit(api, lane_provider="openai", **extra) -> str:
    body = {"provider": lane_provider, "model": "gpt-4o-mini", "prompt": "hi", **extra}
    return api.post("/api/v1/tasks", body, format="json").json()["task_id"]


def test_status_shows_redis_workers_queues_and_today(api):
    submit(api)
    text = run("status")
    assert "redis     ok" in text and "queue     remote    1 pending" in text
    assert "1 created" in text and "no GPU" in text
    data = run_json("status")
    assert data["queues"]["remote"]["pending"] == 1 and data["today"]["created"] == 1


def test_status_reports_the_service_s_uptime_not_its_own(processes):
    assert run_json("status")["uptime_seconds"] is None  # no process of the service is up
    started = time.time()
    processes.worker("remote")
    uptime = run_json("status")["uptime_seconds"]
    assert 0 <= uptime <= time.time() - started + 0.5  # the worker's age


def test_a_command_says_nothing_about_a_generated_key(redis_prefix):
    env = child_env(redis_prefix)
    env.pop("SOP_LLM_API_KEYS", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "gpu"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "SOP_LLM_API_KEYS" not in done.stderr + done.stdout


def test_gpu_says_no_gpu_here():
    assert run("gpu").startswith("GPU 0: no GPU")
    assert run_json("gpu")["available"] is False


def test_models_lists_the_catalog():
    text = run("models", "list")
    assert "gemma-3-270m-q4_k_m" in text and "Q4_K_M" in text and "gemma3" in text
    [gemma] = [m for m in run_json("models", "list") if m["name"] == "gemma-3-270m-q4_k_m"]
    assert gemma["alias"] == "gemma" and gemma["status"] == "ok"


def test_models_loaded_says_when_nothing_is():
    assert run("models", "loaded").strip() == "no model loaded"


def test_loading_an_unknown_model_is_a_clear_error():
    with pytest.raises(CommandError, match="unknown_model: no model 'nope'"):
        run("models", "load", "nope")


@pytest.mark.slow
def test_models_load_and_unload_run_on_the_gpu_worker(processes):
    processes.worker("gpu", gpu=True)
    loaded = run_json("models", "load", "gemma", "--n-ctx", "1024")
    assert loaded["outcome"] == "loaded"
    assert run_json("models", "loaded")["loaded"]["params"]["n_ctx"] == 1024
    assert "unloaded" in run("models", "unload")


def test_queue_list_shows_pending_tasks_in_run_order(api):
    low, high = submit(api, priority=1), submit(api, priority=7)
    pending = run_json("queue", "list")["lanes"]["remote"]["pending"]
    assert [p["task_id"] for p in pending] == [high, low]
    assert high in run("queue", "list")


def test_queue_purge_asks_first_and_cancels_every_pending_task(api):
    ids = [submit(api) for _ in range(3)]
    with pytest.raises(CommandError, match="aborted"):
        run("queue", "purge", "remote", stdin="n\n")
    assert queue.depth("remote") == 3
    assert "purged 3 task(s)" in run("queue", "purge", "remote", stdin="y\n")
    assert queue.depth("remote") == 0
    assert {store.load(t).status for t in ids} == {"cancelled"}
    assert run_json("queue", "purge", "remote", "--yes")["purged"] == []


def _stuck_task(api) -> str:
    task_id = submit(api)
    queue.claim("remote", "worker-that-died")  # processing, owned by nobody alive
    return task_id


def test_queue_stuck_lists_and_requeues_tasks_whose_worker_died(api):
    task_id = _stuck_task(api)
    [stuck] = run_json("queue", "stuck")
    assert stuck["task_id"] == task_id and stuck["worker"] == "worker-that-died"
    assert run_json("queue", "stuck", "--requeue")["requeued"] == [task_id]
    assert store.load(task_id).status == "queued" and run_json("queue", "stuck") == []


def test_queue_stuck_can_fail_them_instead(api):
    task_id = _stuck_task(api)
    assert "failed 1" in run("queue", "stuck", "--fail")
    task = store.load(task_id)
    assert task.status == "failed" and task.error["code"] == "worker_lost"


def test_task_show_prints_the_report_and_cancel_cancels(api):
    task_id = submit(api, metadata={"x": 1})
    text = run("task", "show", task_id)
    assert f"task      {task_id}  [queued]" in text and "created" in text
    assert run_json("task", "show", task_id)["metadata"] == {"x": 1}
    assert "is now cancelled" in run("task", "cancel", task_id)
    with pytest.raises(CommandError, match="task_finished"):
        run("task", "cancel", task_id)
    with pytest.raises(CommandError, match="not_found"):
        run("task", "show", "nope")


def test_stats_prints_a_table_of_days(api):
    submit(api)
    text = run("stats", "--days", "2")
    assert text.splitlines()[0].split()[:3] == ["DATE", "CREATED", "COMPLETED"]
    days = run_json("stats", "--days", "2")
    assert len(days) == 2 and days[0]["created"] == 1


@pytest.mark.parametrize("command", ["status", "models", "gpu", "queue", "task", "stats"])
def test_every_command_has_help(command, redis_prefix):
    help_text = subprocess.run(
        [sys.executable, "manage.py", command, "--help"],
        cwd=ROOT,
        env=child_env(redis_prefix),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0 and "--json" in help_text.stdout


def test_rqstats_works(redis_prefix):
    result = subprocess.run(
        [sys.executable, "manage.py", "rqstats"],
        cwd=ROOT,
        env=child_env(redis_prefix),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and f"{redis_prefix}gpu" in result.stdout


def test_django_rq_statistics_are_behind_the_api_key(api, anon):
    assert anon.get("/api/v1/rq/stats").status_code == 401
    names = [q["name"] for q in api.get("/api/v1/rq/stats").json()["queues"]]
    assert any(name.endswith("remote") for name in names)


def test_alive_fails_without_a_worker_and_passes_with_one(processes):
    with pytest.raises(CommandError, match="no live worker"):
        run("alive")
    processes.worker("remote")
    assert "1 live worker(s)" in run("alive")
