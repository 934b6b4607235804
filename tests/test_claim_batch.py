"""A slot scheduler claims its free slots' worth of tasks in one round trip (queue.CLAIM_MANY):
the best task, then more of its model, each claimed exactly as one CLAIM would."""

import time

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import lifecycle, store
from tasks.services import task_create


def _queued(model: str, deadline_seconds: float | None = None) -> str:
    data = {"provider": "openai", "model": model, "prompt": "hi", "priority": 0, "params": {}}
    data["timeout_seconds"] = 30
    if deadline_seconds:
        data["deadline_seconds"] = deadline_seconds
    view, _ = task_create(data=data, idempotency_key=None, owner="test")
    # FIFO within a priority is by enqueue millisecond (queue.score): the next task is a later one
    time.sleep(0.002)
    return view["task_id"]


def _claim(limit: int, preferred: str = "") -> list[str]:
    tasks = lifecycle.task_claim_many(
        lane="remote", worker="w-test", limit=limit, preferred_model=preferred
    )
    return [task.task_id for task in tasks]


def test_a_batch_claim_takes_tasks_in_queue_order_up_to_its_limit():
    ids = [_queued("gpt-4o-mini") for _ in range(5)]
    assert _claim(3) == ids[:3]
    assert [store.load(i).status for i in ids] == ["processing"] * 3 + ["queued"] * 2
    assert _claim(10) == ids[3:]
    assert _claim(10) == []


def test_a_batch_claim_keeps_to_the_first_task_s_model_and_ends_at_another_model_s():
    a1, a2, b, a3 = (_queued(m) for m in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini"))
    # After a1 the rest prefer its model, as one claim per slot did: a3 passes b over once;
    # then b, the only task left, is taken and ends the claim (its caller holds it).
    assert _claim(10) == [a1, a2, a3, b]
    assert get_redis().hget(keys.session(b), "passed_over") == "1"


def test_each_claimed_task_is_announced_and_an_expired_one_is_failed_once():
    expired = _queued("gpt-4o-mini", deadline_seconds=1)
    get_redis().hset(keys.session(expired), "deadline_at", "1")  # long past
    live = [_queued("gpt-4o-mini") for _ in range(2)]
    assert _claim(5) == live
    assert store.load(expired).status == "failed"
    for task_id in live:
        assert "dequeued" in [entry.get("event") for entry in store.timeline(task_id)]
