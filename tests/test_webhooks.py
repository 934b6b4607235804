"""Webhook delivery to a real HTTP receiver on 127.0.0.1 (the private-address guard relaxed)."""

import json

import pytest
from standardwebhooks import Webhook

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import store
from tasks.webhooks import dead_letters, webhook_deliver
from tests.fakes.servers import FakeServer, Reply, openai_chat


@pytest.fixture
def receiver():
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def remote():
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("done")))
        yield fake


@pytest.fixture
def finished_task(api, remote, receiver, burst):
    """A completed task whose webhook points at the receiver; its delivery not yet made."""

    def make(**extra) -> str:
        body = {
            "provider": "openai_compatible",
            "model": "m",
            "prompt": "hi",
            "options": {"base_url": f"{remote.url}/v1"},
            "webhook_url": f"{receiver.url}/hook",
            **extra,
        }
        task_id = api.post("/api/v1/tasks", body, format="json").json()["task_id"]
        burst("remote")
        return task_id

    return make


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def test_it_delivers_once_signed_so_a_stock_library_verifies_it(
    finished_task, receiver, burst, settings
):
    receiver.reply(Reply(200, {"ok": True}))
    task_id = finished_task()
    burst("webhooks")
    assert len(receiver.seen) == 1
    seen = receiver.seen[0]
    raw = json.dumps(seen.body, separators=(",", ":"))
    payload = Webhook(settings.WEBHOOK_SECRET).verify(raw, dict(seen.headers))
    assert payload["event"] == "task.completed" and payload["task"]["task_id"] == task_id
    assert payload["task"]["result"]["text"] == "done"
    assert seen.headers["X-SOP-Task-Id"] == task_id and seen.headers["X-SOP-Attempt"] == "1"
    assert seen.headers["webhook-id"] == payload["delivery_id"]
    task = store.load(task_id)
    assert task.webhook["state"] == "delivered" and len(task.webhook["attempts"]) == 1


def test_a_forged_signature_does_not_verify(finished_task, receiver, burst):
    receiver.reply(Reply(200, {}))
    finished_task()
    burst("webhooks")
    seen = receiver.seen[0]
    other = Webhook("whsec_" + "b" * 43)
    with pytest.raises(Exception):  # noqa: B017 -- the library's own verification error
        other.verify(json.dumps(seen.body, separators=(",", ":")), dict(seen.headers))


def test_500_500_200_is_delivered_on_the_third_attempt(finished_task, receiver, api):
    receiver.reply(Reply(500, {}), Reply(500, {}), Reply(200, {}))
    task_id = finished_task()
    sleeps = Sleeps()
    assert webhook_deliver(task_id=task_id, sleep=sleeps) == "delivered"
    attempts = store.load(task_id).webhook["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 500, 200]
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.6  # exponential, with jitter
    report = api.get(f"/api/v1/tasks/{task_id}/report").json()
    assert [d["status_code"] for d in report["webhook_deliveries"]] == [500, 500, 200]
    assert [e["event"] for e in report["timeline"]].count("webhook_attempt") == 3


def test_a_429_waits_as_long_as_retry_after_says(finished_task, receiver):
    receiver.reply(Reply(429, {}, {"Retry-After": "4"}), Reply(200, {}))
    sleeps = Sleeps()
    assert webhook_deliver(task_id=finished_task(), sleep=sleeps) == "delivered"
    assert sleeps == [4.0]


def test_a_receiver_that_is_down_gets_every_retry_then_fails_and_the_result_stays(
    finished_task, receiver, settings
):
    settings.WEBHOOK_MAX_RETRIES = 3
    task_id = finished_task(webhook_url="http://127.0.0.1:1/hook")
    assert webhook_deliver(task_id=task_id, sleep=Sleeps()) == "failed"
    task = store.load(task_id)
    assert len(task.webhook["attempts"]) == 4  # the first try + WEBHOOK_MAX_RETRIES
    assert all("connection failed" in a["error"] for a in task.webhook["attempts"])
    assert task.status == "completed" and task.result["text"] == "done"
    assert [d["task_id"] for d in dead_letters()] == [task_id]


def test_a_receiver_that_times_out_is_retried(finished_task, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_MAX_RETRIES = 1, 1
    receiver.reply(Reply(200, {}, delay=1.5), Reply(200, {}))
    task_id = finished_task()
    assert webhook_deliver(task_id=task_id, sleep=Sleeps()) == "delivered"
    first = store.load(task_id).webhook["attempts"][0]
    assert "timed out" in first["error"] and first["duration_ms"] >= 1000


def test_a_400_is_not_retried(finished_task, receiver):
    receiver.reply(Reply(400, {"error": "bad"}))
    task_id = finished_task()
    assert webhook_deliver(task_id=task_id, sleep=Sleeps()) == "failed"
    assert len(receiver.seen) == 1


def test_a_redirect_is_not_followed(finished_task, receiver):
    receiver.reply(Reply(302, {}, {"Location": "http://169.254.169.254/latest/meta-data"}))
    task_id = finished_task()
    assert webhook_deliver(task_id=task_id, sleep=Sleeps()) == "failed"
    assert "redirects are not followed" in store.load(task_id).webhook["attempts"][0]["error"]


def test_a_private_address_is_refused_at_submit_when_the_guard_is_on(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest",
        "http://localhost/hook",
        "http://[::1]/h",
    ):
        response = api.post(
            "/api/v1/tasks",
            {"provider": "openai", "model": "m", "prompt": "x", "webhook_url": url},
            format="json",
        )
        assert response.status_code == 400, url
        assert response.json()["error"]["field"] == "webhook_url"


def test_a_private_address_is_refused_again_at_delivery(finished_task, receiver, settings):
    task_id = finished_task()  # accepted while private addresses were allowed
    settings.WEBHOOK_ALLOW_PRIVATE = False  # ... and the address is private at delivery time
    assert webhook_deliver(task_id=task_id, sleep=Sleeps()) == "failed"
    assert not receiver.seen
    assert "private/loopback" in store.load(task_id).webhook["attempts"][0]["error"]


def test_dead_letters_are_listed_and_replayed(finished_task, receiver, api, burst, settings):
    settings.WEBHOOK_MAX_RETRIES = 0
    receiver.reply(Reply(503, {}), Reply(200, {}))
    task_id = finished_task()
    burst("webhooks")
    listed = api.get("/api/v1/webhooks/dead-letters").json()["dead_letters"]
    assert [d["task_id"] for d in listed] == [task_id]
    replay = api.post("/api/v1/webhooks/dead-letters/replay", {}, format="json")
    assert replay.status_code == 202 and replay.json()["replayed"] == [task_id]
    burst("webhooks")
    assert store.load(task_id).webhook["state"] == "delivered"
    assert not get_redis().lrange(keys.webhooks_dead(), 0, -1)


def test_a_finished_task_s_webhook_can_be_redelivered_on_demand(
    finished_task, receiver, api, burst
):
    receiver.reply(Reply(200, {}))
    task_id = finished_task()
    burst("webhooks")
    response = api.post(f"/api/v1/tasks/{task_id}/webhook/redeliver")
    assert response.status_code == 202
    burst("webhooks")
    assert len(receiver.seen) == 2
    assert receiver.seen[0].headers["webhook-id"] != receiver.seen[1].headers["webhook-id"]


def test_a_cancelled_task_s_webhook_says_so(api, receiver, burst):
    receiver.reply(Reply(200, {}))
    body = {
        "provider": "openai",
        "model": "m",
        "prompt": "x",
        "webhook_url": f"{receiver.url}/hook",
    }
    task_id = api.post("/api/v1/tasks", body, format="json").json()["task_id"]
    api.post(f"/api/v1/tasks/{task_id}/cancel")
    burst("webhooks")
    assert receiver.seen[0].body["event"] == "task.cancelled"
