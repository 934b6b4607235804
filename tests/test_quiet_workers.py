"""A worker logs at the operator's LOG_LEVEL, rq's own lines included (issue #32): django-rq's
command asks rq for INFO whatever the setting, and every line also went to Redis."""

import json
import subprocess
import sys

import pytest

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import store
from tasks.queue import rq_queue
from tasks.services import task_create
from tests.conftest import ROOT, child_env
from tests.fakes.servers import FakeServer, Reply, openai_chat

pytestmark = pytest.mark.slow


def _one_job(prefix: str, level: str) -> tuple[str, str]:
    """Create a task, run a burst worker over it at `level` -> (its task id, what it printed)."""
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("quiet")))
        data = {
            "provider": "openai_compatible",
            "model": "m",
            "prompt": "hi",
            "options": {"base_url": f"{remote.url}/v1"},
            "priority": 0,
            "params": {},
            "timeout_seconds": 30,
        }
        task, _ = task_create(data=data, idempotency_key=None, owner="quiet")
        run = subprocess.run(
            [sys.executable, "manage.py", "rqworker", "--burst", "--worker-class"]
            + ["tasks.worker.workers.HeartbeatWorker", rq_queue("remote").name],
            cwd=ROOT,
            env=child_env(prefix, LOG_LEVEL=level),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr
    return task["task_id"], run.stdout + run.stderr


def _levels_in_redis() -> set[str]:
    return {json.loads(line)["level"] for line in get_redis().lrange(keys.logs_recent(), 0, -1)}


def test_at_warning_a_successful_job_writes_no_info_line_anywhere(redis_prefix):
    task_id, printed = _one_job(redis_prefix, "WARNING")
    assert store.load(task_id).status == "completed"
    assert " INFO " not in printed and "Job OK" not in printed, printed
    assert _levels_in_redis() <= {"WARNING", "ERROR", "CRITICAL"}
    assert not get_redis().exists(keys.logs_task(task_id))


def test_at_info_the_same_job_says_what_it_did(redis_prefix):
    task_id, printed = _one_job(redis_prefix, "INFO")
    assert store.load(task_id).status == "completed"
    assert f"task {task_id} started" in printed and "Successfully completed job" in printed
    messages = [
        json.loads(line)["message"] for line in get_redis().lrange(keys.logs_task(task_id), 0, -1)
    ]
    assert any("completed by" in m for m in messages), messages
