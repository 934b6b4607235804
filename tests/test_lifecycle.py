"""Every status change after creation, through tasks.lifecycle, against real Redis."""

import time

import pytest

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import lifecycle, queue, store
from tasks.services import task_create

STAMPS = ("completed_at", "failed_at", "cancelled_at")


def _queued(deadline_seconds: float | None = None) -> store.Task:
    data = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt": "hi",
        "priority": 0,
        "params": {},
        "timeout_seconds": 30,
    }
    if deadline_seconds:
        data["deadline_seconds"] = deadline_seconds
    view, _ = task_create(data=data, idempotency_key=None, owner="test")
    return store.load(view["task_id"])


def _processing() -> store.Task:
    task = _queued()
    claimed = lifecycle.task_claim(lane="remote", worker="w-test")
    assert claimed is not None and claimed.task_id == task.task_id
    return claimed


def _finish(task: store.Task, status: str) -> bool:
    if status == "completed":
        return lifecycle.task_complete(task, fields={}, effects=store.Effects())
    if status == "failed":
        return lifecycle.task_fail(task, code="boom", message="it broke")
    return lifecycle.task_cancel(task, code="cancelled", message="by the test")


def _timeline(task_id: str) -> list[str]:
    return [entry["event"] for entry in store.timeline(task_id)]


def test_a_claim_moves_a_queued_task_to_processing_and_returns_it_whole():
    task = _processing()
    assert task.status == "processing" and task.started_at and task.worker == "w-test"
    assert task.run == 1 and task.request["prompt"] == "hi"
    assert queue.processing("remote") == {task.task_id: "w-test"}
    assert _timeline(task.task_id) == ["created", "dequeued"]


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_processing_task_reaches_each_final_status_with_its_stamps(status):
    task = _processing()
    assert _finish(task, status) is True
    stored = store.load(task.task_id)
    assert stored.status == status and stored.finished_at
    assert getattr(stored, f"{status}_at") == pytest.approx(stored.finished_at, abs=1)
    assert [getattr(stored, s) for s in STAMPS if s != f"{status}_at"] == [None, None]
    assert not queue.processing("remote")
    assert _timeline(task.task_id)[-1] == status


def test_a_queued_task_can_be_cancelled_and_leaves_its_lane():
    task = _queued()
    assert _finish(task, "cancelled") is True
    stored = store.load(task.task_id)
    assert stored.status == "cancelled" and stored.finished_at and stored.cancelled_at
    assert queue.position("remote", task.task_id) is None


def test_a_queued_task_fails_only_by_its_deadline():
    task = _queued()
    assert _finish(task, "failed") is False
    assert store.load(task.task_id).status == "queued"


def test_a_queued_task_cannot_complete():
    task = _queued()
    assert _finish(task, "completed") is False
    assert store.load(task.task_id).status == "queued" and task.status == "queued"


@pytest.mark.parametrize("first", ["completed", "failed", "cancelled"])
@pytest.mark.parametrize("then", ["completed", "failed", "cancelled", "queued"])
def test_a_final_task_never_changes_again(first, then):
    task = _processing()
    _finish(task, first)
    before = store.load(task.task_id)
    if then == "queued":
        assert lifecycle.task_requeue(task, reason="test") is False
    else:
        assert _finish(task, then) is False
    after = store.load(task.task_id)
    assert after.status == first and after.finished_at == before.finished_at
    assert _timeline(task.task_id).count(first) == 1


def test_a_requeued_task_goes_back_to_its_old_place_and_runs_again():
    task = _processing()
    later = _queued()
    assert lifecycle.task_requeue(task, reason="worker_lost") is True
    stored = store.load(task.task_id)
    assert stored.status == "queued" and stored.crash_count == 1 and not stored.started_at
    assert [t for t, _ in queue.pending("remote")] == [task.task_id, later.task_id]
    again = lifecycle.task_claim(lane="remote", worker="w-two")
    assert again.task_id == task.task_id and again.run == 2


def test_a_change_based_on_a_stale_read_is_refused():
    task = _processing()
    lifecycle.task_requeue(task, reason="worker_lost")
    again = lifecycle.task_claim(lane="remote", worker="w-two")  # run 2, on another worker
    assert _finish(task, "completed") is False  # the first run's late answer
    assert store.load(task.task_id).status == "processing" and again.run == 2


def test_a_worker_s_own_cancel_never_touches_a_requeued_task():
    task = _processing()
    lifecycle.task_requeue(task, reason="worker_stopped")
    assert lifecycle.task_cancel(task, code="cancelled", message="x", running=True) is False
    assert store.load(task.task_id).status == "queued"


def test_a_queued_task_cannot_be_requeued():
    task = _queued()
    assert lifecycle.task_requeue(task, reason="test") is False


def test_a_task_that_expires_in_the_queue_fails_on_time_with_its_failure_time():
    task = _queued(deadline_seconds=0.2)
    time.sleep(0.3)  # the deadline itself is what is tested: it must pass
    assert lifecycle.deadlines_sweep() == [task.task_id]
    stored = store.load(task.task_id)
    assert stored.status == "failed" and stored.error["code"] == "deadline_exceeded"
    assert stored.failed_at and stored.finished_at
    assert queue.position("remote", task.task_id) is None
    assert not get_redis().zscore(keys.queue_deadlines(), task.task_id)


def test_a_claim_fails_expired_tasks_it_meets_and_takes_the_next():
    expired = _queued(deadline_seconds=0.2)
    fresh = _queued()
    time.sleep(0.3)
    claimed = lifecycle.task_claim(lane="remote", worker="w-test")
    assert claimed.task_id == fresh.task_id
    stored = store.load(expired.task_id)
    assert stored.status == "failed" and stored.failed_at and stored.finished_at


def test_a_sweep_leaves_tasks_before_their_deadline_alone():
    task = _queued(deadline_seconds=60)
    assert lifecycle.deadlines_sweep() == []
    assert store.load(task.task_id).status == "queued"


def test_a_final_change_counts_and_announces_itself_once():
    task = _processing()
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.pubsub_task(task.task_id))
    pubsub.get_message(timeout=1)
    _finish(task, "failed")
    _finish(task, "failed")
    messages = [pubsub.get_message(timeout=1) for _ in range(2)]
    assert sum(1 for m in messages if m and '"task.failed"' in m["data"]) == 1
    pubsub.close()
