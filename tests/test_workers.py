"""Real worker processes: end to end over HTTP, and what happens when one is killed."""

import os
import signal

import pytest
import redis
import requests

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import queue, store
from tasks.worker.recovery import tasks_recover
from tests.conftest import API_KEY, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def task_body(url: str, **extra) -> dict:
    return {
        "provider": "openai_compatible",
        "model": "fake-llm",
        "prompt": "hello",
        "options": {"base_url": f"{url}/v1"},
        **extra,
    }


def poll(base: str, task_id: str, until=("completed", "failed", "cancelled"), timeout=30):
    def done():
        task = requests.get(f"{base}/api/v1/tasks/{task_id}", headers=AUTH, timeout=5).json()
        return task if task["status"] in until else None

    return wait_for(done, what=f"task {task_id} to reach {until}", timeout=timeout)


def test_end_to_end_over_http_with_a_remote_provider(processes):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("Hi from the fake", completion_tokens=4)))
        base = processes.web()
        processes.worker("remote")
        created = requests.post(
            f"{base}/api/v1/tasks", json=task_body(remote.url), headers=AUTH, timeout=5
        )
        assert created.status_code == 202
        task = poll(base, created.json()["task_id"])
        assert task["status"] == "completed" and task["result"]["text"] == "Hi from the fake"
        report = requests.get(
            f"{base}/api/v1/tasks/{task['task_id']}/report", headers=AUTH, timeout=5
        ).json()
        assert [e["event"] for e in report["timeline"]] == [
            "created",
            "dequeued",
            "attempt",
            "completed",
        ]
        assert report["worker"] and report["timings"]["total_ms"] > 0


def test_a_killed_worker_and_its_job_leave_rq_s_statistics(processes):
    from rq import Worker
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from sop_llm.core.lanes import rq_queue

    def remote_stats():  # what django-rq's `rqstats` counts
        lane = rq_queue("remote")
        return {
            "workers": Worker.count(queue=lane),
            "started_jobs": StartedJobRegistry(queue=lane).count,
            "failed_jobs": FailedJobRegistry(queue=lane).count,
        }

    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("slow"), delay=30))
        victim = processes.worker("remote")
        _submit(remote.url)
        wait_for(lambda: remote.seen, what="the worker to call the remote")
        assert (remote_stats()["workers"], remote_stats()["started_jobs"]) == (1, 1)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        wait_for(lambda: tasks_recover()["forgotten_workers"], what="rq's heartbeat to age")
        stats = remote_stats()
        assert (stats["workers"], stats["started_jobs"], stats["failed_jobs"]) == (0, 0, 1)


def test_a_killed_worker_s_task_is_requeued_and_completes(processes):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("slow"), delay=30), Reply(200, openai_chat("fast")))
        victim = processes.worker("remote")
        task_id = _submit(remote.url)
        wait_for(lambda: remote.seen, what="the worker to call the remote")
        assert store.load(task_id).status == "processing"
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        report = tasks_recover()
        assert report["requeued"] == [task_id]
        assert store.load(task_id).status == "queued"
        processes.worker("remote")
        task = wait_for(lambda: _final(task_id), what="the requeued task to finish")
        assert task.status == "completed" and task.result["text"] == "fast"
        assert task.crash_count == 1
        assert not queue.processing("remote")


def test_a_task_that_loses_its_worker_too_often_fails_with_worker_lost(processes, settings):
    settings.TASK_MAX_ATTEMPTS = 1
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("never"), delay=30))
        victim = processes.worker("remote", TASK_MAX_ATTEMPTS="1")
        task_id = _submit(remote.url)
        wait_for(lambda: remote.seen, what="the worker to call the remote")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert tasks_recover()["failed"] == [task_id]
        task = store.load(task_id)
        assert task.status == "failed" and task.error["code"] == "worker_lost"


def test_recovery_runs_by_itself_in_a_live_worker(processes):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("slow"), delay=30), Reply(200, openai_chat("fast")))
        victim = processes.worker("remote")
        task_id = _submit(remote.url)
        wait_for(lambda: remote.seen, what="the worker to call the remote")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        processes.worker("remote")  # recovers at start-up, and again on its heartbeat
        task = wait_for(lambda: _final(task_id), what="automatic recovery")
        assert task.status == "completed"


def test_cancelling_a_running_task_stops_it(processes):
    with FakeServer() as remote:
        remote.reply(Reply(503, {"error": {"message": "busy"}}, {"Retry-After": "1"}))
        processes.worker("remote", PROVIDER_MAX_RETRIES="5")
        task_id = _submit(remote.url)
        wait_for(lambda: remote.seen, what="the first attempt")
        from tasks.services import task_cancel

        assert task_cancel(task_id=task_id)["status"] == "processing"
        task = wait_for(lambda: _final(task_id), what="the cancel to land", timeout=10)
        assert task.status == "cancelled"
        assert len(remote.seen) < 6


def _submit(url: str) -> str:
    from tasks.serializers import TaskCreateSerializer
    from tasks.services import task_create

    serializer = TaskCreateSerializer(data=task_body(url))
    serializer.is_valid(raise_exception=True)
    task, _ = task_create(data=serializer.validated_data, idempotency_key=None, owner="t")
    return task["task_id"]


def _final(task_id: str):
    task = store.load(task_id)
    return task if task.final else None


def test_workers_publish_liveness_and_remove_it_on_a_clean_stop(processes):
    worker = processes.worker("remote")
    alive = get_redis().keys(keys.worker_alive("*"))
    assert len(alive) == 1
    os.kill(worker.pid, signal.SIGTERM)
    worker.wait(timeout=15)
    assert not get_redis().keys(keys.worker_alive("*"))


@pytest.mark.parametrize("error", [redis.TimeoutError, redis.ConnectionError])
def test_a_worker_waits_out_a_redis_timeout_as_it_does_a_refused_connection(monkeypatch, error):
    """rq ends the worker on a TimeoutError from Redis: its bookkeeping is retried instead."""
    from tasks.worker import workers

    monkeypatch.setattr(workers, "REDIS_RETRY_FIRST_SECONDS", 0.001)
    outcomes = iter([error("Timeout connecting to server"), error("again"), "done"])

    def bookkeeping():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert workers._through_outage(bookkeeping) == "done"
