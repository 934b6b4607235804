"""The Tasks API over real Redis and real rq workers."""

import concurrent.futures
import json
import time

import pytest

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import lifecycle, queue, store
from tasks.worker.ops import queue_purge
from tests.fakes.servers import FakeServer, Reply, openai_chat


@pytest.fixture
def remote():
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("Paris.", prompt_tokens=9, completion_tokens=2)))
        yield fake


def body(remote, **extra):
    return {
        "provider": "openai_compatible",
        "model": "fake-llm",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "options": {"base_url": f"{remote.url}/v1"},
        **extra,
    }


def test_a_task_is_accepted_queued_and_completed_by_a_worker(api, remote, burst):
    created = api.post("/api/v1/tasks", body(remote, metadata={"order": 7}), format="json")
    assert created.status_code == 202
    task_id = created.json()["task_id"]
    assert created.json()["status"] == "queued" and created["Location"].endswith(task_id)
    assert created.json()["queue"]["position"] == 1
    burst("remote")
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert task["status"] == "completed"
    assert task["result"]["text"] == "Paris." and task["result"]["finish_reason"] == "stop"
    assert task["usage"] == {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    assert task["metadata"] == {"order": 7} and task["error"] is None
    assert task["provider"] == "openai_compatible" and task["completed_at"]


def test_the_report_explains_the_task(api, remote, burst):
    task_id = api.post("/api/v1/tasks", body(remote), format="json").json()["task_id"]
    burst("remote")
    report = api.get(f"/api/v1/tasks/{task_id}/report").json()
    events = [e["event"] for e in report["timeline"]]
    assert events == ["created", "dequeued", "attempt", "completed"]
    timings = report["timings"]
    assert timings["queue_wait_ms"] >= 0 and timings["generation_ms"] > 0
    assert timings["total_ms"] >= timings["generation_ms"]
    assert report["attempts"][0]["outcome"] == "ok"
    assert report["reproducibility"]["params"]["max_tokens"] == 256
    assert report["request"]["messages"][0]["content"] == "Capital of France?"


def test_a_failing_task_records_its_error_and_attempts(api, burst, settings):
    settings.PROVIDER_MAX_RETRIES = 0
    with FakeServer() as fake:
        fake.reply(Reply(400, {"error": {"message": "model fake-llm does not exist"}}))
        task_id = api.post("/api/v1/tasks", body(fake), format="json").json()["task_id"]
        burst("remote")
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert task["status"] == "failed"
    assert task["error"]["code"] == "bad_request"
    assert "model fake-llm does not exist" in task["error"]["message"]


def test_priorities_run_highest_first_and_fifo_within_one(api, remote, burst):
    priorities = [(i * 7) % 5 - 2 for i in range(50)]  # -2..2, interleaved
    ids = [
        api.post(
            "/api/v1/tasks", body(remote, priority=p, metadata={"i": i}), format="json"
        ).json()["task_id"]
        for i, p in enumerate(priorities)
    ]
    burst("remote")
    started = sorted(ids, key=lambda t: float(store.load(t).started_at))
    expected = [ids[i] for i in sorted(range(50), key=lambda i: (-priorities[i], i))]
    assert started == expected


def test_the_same_idempotency_key_gives_the_same_task_under_concurrency(api, remote):
    def post(_):
        return api.post(
            "/api/v1/tasks", body(remote), format="json", HTTP_IDEMPOTENCY_KEY="order-123"
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(post, range(50)))
    ids = {a.json()["task_id"] for a in answers}
    assert len(ids) == 1
    assert sorted(a.status_code for a in answers) == [200] * 49 + [202]
    assert queue.depth("remote") == 1


def test_an_idempotency_key_reused_for_another_request_is_a_409(api, remote):
    first = api.post("/api/v1/tasks", body(remote, idempotency_key="k-1"), format="json")
    again = api.post(
        "/api/v1/tasks", body(remote, idempotency_key="k-1", priority=3), format="json"
    )
    assert first.status_code == 202 and again.status_code == 409
    assert again.json()["error"]["code"] == "idempotency_conflict"


def test_a_cancelled_queued_task_never_runs(api, remote, burst):
    task_id = api.post("/api/v1/tasks", body(remote), format="json").json()["task_id"]
    cancelled = api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    burst("remote")
    assert not remote.seen
    assert api.get(f"/api/v1/tasks/{task_id}").json()["status"] == "cancelled"
    assert api.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 409


def test_a_finished_task_cannot_be_cancelled(api, remote, burst):
    task_id = api.post("/api/v1/tasks", body(remote), format="json").json()["task_id"]
    burst("remote")
    response = api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.status_code == 409 and response.json()["error"]["code"] == "task_finished"


def test_a_completed_task_never_goes_back_to_processing(api, remote, burst):
    task_id = api.post("/api/v1/tasks", body(remote), format="json").json()["task_id"]
    burst("remote")
    task = store.load(task_id)
    assert lifecycle.task_requeue(task, reason="test") is False and task.status == "completed"
    assert lifecycle.task_fail(task, code="x", message="y") is False
    assert store.load(task_id).status == "completed"


def test_a_task_past_its_deadline_is_never_run(api, remote, burst):
    task_id = api.post("/api/v1/tasks", body(remote, deadline_seconds=1), format="json").json()[
        "task_id"
    ]
    get_redis().hset(keys.session(task_id), "deadline_at", 1.0)  # its deadline has passed
    burst("remote")
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    assert task["status"] == "failed" and task["error"]["code"] == "deadline_exceeded"
    assert not remote.seen


def test_a_queued_task_shows_its_position_and_an_estimated_start(api, remote, burst):
    api.post("/api/v1/tasks", body(remote), format="json")
    burst("remote")  # one finished task gives the lane a recent duration
    ids = [
        api.post("/api/v1/tasks", body(remote), format="json").json()["task_id"] for _ in range(3)
    ]
    third = api.get(f"/api/v1/tasks/{ids[2]}").json()
    assert third["queue"]["position"] == 3
    assert third["queue"]["estimated_start_at"] is not None


def test_the_estimated_start_weighs_the_tokens_asked_by_the_tasks_ahead(api, burst):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("x " * 40, completion_tokens=40), delay=0.4))
        api.post("/api/v1/tasks", body(remote, params={"max_tokens": 40}), format="json")
        burst("remote")  # history: 40 tokens in ~0.4 s

        def eta_behind(max_tokens: int) -> float:
            ahead = body(remote, params={"max_tokens": max_tokens})
            for _ in range(3):
                api.post("/api/v1/tasks", ahead, format="json")
            mine = api.post("/api/v1/tasks", body(remote), format="json").json()["task_id"]
            estimate = api.get(f"/api/v1/tasks/{mine}").json()["queue"]["estimated_start_at"]
            queue_purge(lane="remote")
            return estimate - time.time()

        short, long = eta_behind(4), eta_behind(400)
    assert 0 <= short < 0.6  # three tiny tasks ahead: about three overheads
    assert long > 8 * short and long > 3.0  # three long ones: ~3 x 400 tokens at ~100 tok/s


def test_an_unknown_task_is_a_404(api):
    response = api.get("/api/v1/tasks/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_provider_keys_sent_with_a_task_are_sealed_in_redis(api, remote, burst):
    secret = "sk-request-secret-98765"
    task_id = api.post(
        "/api/v1/tasks",
        body(remote, options={"base_url": f"{remote.url}/v1", "api_key": secret}),
        format="json",
    ).json()["task_id"]
    stored = json.dumps(get_redis().hgetall(keys.session(task_id)))
    assert secret not in stored
    burst("remote")
    assert remote.seen[0].headers["Authorization"] == f"Bearer {secret}"
    report = api.get(f"/api/v1/tasks/{task_id}/report").content.decode()
    assert secret not in report


BAD_INPUT = [
    ({"provider": "nope"}, "provider"),
    ({"model": ""}, "model"),
    ({"prompt": "also a prompt"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"params": {"max_tokens": -5}}, "params.max_tokens"),
    ({"params": {"max_tokens": 10**9}}, "params.max_tokens"),
    ({"params": {"temperature": 9}}, "params.temperature"),
    ({"priority": 1000}, "priority"),
    ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 5}}}},
        "response_format.json_schema.schema",
    ),
    ({"response_format": {"type": "grammar", "name": "nope"}}, "response_format.name"),
    ({"fallback": [{"provider": "openai"}]}, "fallback.0.model"),
    ({"timeout_seconds": 0}, "timeout_seconds"),
    ({"deadline_seconds": -1}, "deadline_seconds"),
]


@pytest.mark.parametrize("change,field", BAD_INPUT)
def test_bad_input_is_a_400_that_names_the_field(api, remote, change, field):
    response = api.post("/api/v1/tasks", {**body(remote), **change}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["field"] == field and error["code"] == "invalid"
    assert error["message"] and not error["message"].startswith(field)  # named once, in field


def test_a_local_task_for_a_model_not_in_the_catalog_is_a_400(api):
    response = api.post(
        "/api/v1/tasks",
        {"provider": "local", "model": "../../etc/passwd", "prompt": "x"},
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "model"


def test_a_body_over_the_limit_is_refused_before_it_is_read(api, settings):
    settings.MAX_REQUEST_BODY_BYTES = 2048
    response = api.post("/api/v1/tasks", {"prompt": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_malformed_json_is_a_400(api):
    response = api.post("/api/v1/tasks", "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["error"]["message"]


def test_a_full_lane_answers_429_with_retry_after(api, remote, settings):
    settings.QUEUE_MAX_PENDING = 2
    for _ in range(2):
        assert api.post("/api/v1/tasks", body(remote), format="json").status_code == 202
    response = api.post("/api/v1/tasks", body(remote), format="json")
    assert response.status_code == 429 and response["Retry-After"]
    assert response.json()["error"]["code"] == "queue_full"
