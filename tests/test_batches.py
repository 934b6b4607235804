"""The Batch API's bookkeeping, in process: a real Redis, real rq workers in burst mode and a
real HTTP server on 127.0.0.1 speaking OpenAI's wire format as the remote provider."""

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from sop_llm.asgi import application
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks.batches.records import batch_load
from tests.conftest import API_KEY, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat

ENDPOINT = "/v1/chat/completions"


@pytest.fixture
def other_api() -> APIClient:
    """The second test key: another owner."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer test-key-secondary-0002")
    return client


@pytest.fixture
def remote(settings):
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("done")))
        settings.OPENAI_COMPATIBLE_BASE_URL = f"{fake.url}/v1"
        yield fake


def line(custom_id: str, **body) -> dict:
    body = {
        "model": "openai_compatible/m",
        "messages": [{"role": "user", "content": f"say {custom_id}"}],
        "max_tokens": 5,
        **body,
    }
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}


def jsonl(items) -> bytes:
    return "".join(
        (item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items
    ).encode()


def upload(api, content: bytes, name: str = "in.jsonl") -> dict:
    response = api.post(
        "/v1/files",
        {"purpose": "batch", "file": SimpleUploadedFile(name, content)},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    return response.json()


def create(api, file_id: str, **extra) -> dict:
    body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h", **extra}
    response = api.post("/v1/batches", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def lines_of(api, file_id: str) -> list[dict]:
    response = api.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200
    return [json.loads(x) for x in response.content.decode().splitlines()]


def test_a_batch_runs_every_line_and_writes_the_output_file(api, remote, burst):
    batch = create(api, upload(api, jsonl([line("a"), line("b"), line("c")]))["id"])
    assert batch["status"] == "validating"
    burst("remote")
    done = api.get(f"/v1/batches/{batch['id']}").json()
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    out = lines_of(api, done["output_file_id"])
    assert sorted(x["custom_id"] for x in out) == ["a", "b", "c"]
    first = out[0]
    assert first["error"] is None and first["response"]["status_code"] == 200
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "done"
    assert first["response"]["body"]["model"] == "openai_compatible/m"
    assert done["error_file_id"] is None


def failed_batch(api, burst, items) -> dict:
    batch = create(api, upload(api, jsonl(items))["id"])
    burst("remote")
    return api.get(f"/v1/batches/{batch['id']}").json()


BAD_LINES = {
    "duplicate_custom_id": (line("a"), "duplicate_custom_id", "custom_id"),
    "wrong_url": ({**line("x"), "url": "/v1/completions"}, "invalid_url", "url"),
    "not_post": ({**line("x"), "method": "GET"}, "invalid_method", "method"),
    "unknown_model": (line("x", model="no-such-model"), "model_not_found", "body.model"),
    "bad_param": (line("x", temperature="hot"), "invalid_request", "body.temperature"),
    "streaming": (line("x", stream=True), "invalid_request", "body.stream"),
    "unknown_key": ({**line("x"), "extra": 1}, "invalid_request", "extra"),
    "no_custom_id": (
        {k: v for k, v in line("x").items() if k != "custom_id"},
        "invalid_custom_id",
        "custom_id",
    ),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_a_bad_line_fails_the_batch_naming_it_and_nothing_is_enqueued(api, remote, burst, case):
    bad, code, param = BAD_LINES[case]
    batch = failed_batch(api, burst, [line("a"), bad, line("b")])
    assert batch["status"] == "failed" and batch["failed_at"]
    [error] = batch["errors"]["data"]
    assert (error["code"], error["line"], error["param"]) == (code, 2, param)
    assert error["message"]
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert remote.seen == [] and batch["output_file_id"] is None
    assert not get_redis().exists(keys.session(batch["id"].removeprefix("batch_") + "-1"))


def test_a_line_larger_than_a_request_body_is_refused_by_number(api, remote, burst, settings):
    settings.MAX_REQUEST_BODY_BYTES = 1024
    batch = failed_batch(
        api, burst, [line("a"), line("big", messages=[{"role": "user", "content": "x" * 2000}])]
    )
    [error] = batch["errors"]["data"]
    assert (error["code"], error["line"]) == ("request_too_large", 2)
    assert "MAX_REQUEST_BODY_BYTES" in error["message"]


def test_every_bad_line_is_listed_up_to_a_cap(api, remote, burst):
    batch = failed_batch(api, burst, ["{}"] * 120)
    errors = batch["errors"]["data"]
    assert [e["line"] for e in errors[:100]] == list(range(1, 101))
    assert errors[-1]["code"] == "too_many_errors" and "20 more" in errors[-1]["message"]


def test_a_batch_over_the_line_limit_fails_whole(api, remote, burst, settings):
    file_id = upload(api, jsonl([line("a"), line("b"), line("c")]))["id"]
    settings.BATCH_MAX_LINES = 2  # lowered after the upload
    batch = create(api, file_id)
    burst("remote")
    batch = api.get(f"/v1/batches/{batch['id']}").json()
    assert batch["status"] == "failed" and batch["errors"]["data"][0]["code"] == "too_many_lines"
    assert remote.seen == []


@pytest.mark.parametrize(
    "body,param",
    [
        ({"endpoint": "/v1/embeddings"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"input_file_id": "file-nope"}, None),
        ({"surprise": True}, "surprise"),
    ],
)
def test_a_bad_create_request_is_refused_in_openais_shape(api, body, param):
    file_id = upload(api, jsonl([line("a")]))["id"]
    request = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h", **body}
    response = api.post("/v1/batches", request, format="json")
    error = response.json()["error"]
    assert response.status_code == (404 if param is None else 400)
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param


def test_another_owners_batch_is_not_found_and_not_listed(api, other_api, remote, burst):
    batch = create(api, upload(api, jsonl([line("a")]))["id"])
    assert other_api.get(f"/v1/batches/{batch['id']}").status_code == 404
    assert other_api.post(f"/v1/batches/{batch['id']}/cancel").status_code == 404
    assert other_api.get("/v1/batches").json()["data"] == []
    assert [b["id"] for b in api.get("/v1/batches").json()["data"]] == [batch["id"]]


def test_batches_list_newest_first_and_page_with_after(api, remote):
    file_id = upload(api, jsonl([line("a")]))["id"]
    ids = [create(api, file_id)["id"] for _ in range(3)]
    assert [b["id"] for b in api.get("/v1/batches").json()["data"]] == ids[::-1]
    page = api.get("/v1/batches", {"after": ids[2], "limit": 1}).json()
    assert [b["id"] for b in page["data"]] == [ids[1]] and page["has_more"] is True


def local_line(custom_id: str) -> dict:
    """A line for the local model: it waits in the gpu lane, which no worker serves here."""
    return line(custom_id, model="gemma")


def test_a_failed_request_goes_to_the_error_file_in_openais_shape(api, burst, settings):
    settings.PROVIDER_MAX_RETRIES = 0
    with FakeServer() as fake:
        fake.reply(Reply(400, {"error": {"message": "model m does not exist"}}))
        settings.OPENAI_COMPATIBLE_BASE_URL = f"{fake.url}/v1"
        batch = create(api, upload(api, jsonl([line("a")]))["id"])
        burst("remote")
    done = api.get(f"/v1/batches/{batch['id']}").json()
    assert done["status"] == "completed" and done["output_file_id"] is None
    assert done["request_counts"] == {"total": 1, "completed": 0, "failed": 1}
    [bad] = lines_of(api, done["error_file_id"])
    assert bad["custom_id"] == "a" and bad["error"] is None
    response = bad["response"]
    assert response["status_code"] == 400 and response["request_id"]
    assert "model m does not exist" in response["body"]["error"]["message"]
    assert response["body"]["error"]["code"] == "bad_request"


def test_a_cancelled_batch_writes_every_unrun_line_to_the_error_file(api, remote, burst):
    batch = create(api, upload(api, jsonl([local_line(str(n)) for n in range(5)]))["id"])
    burst("remote")  # validated and enqueued; nothing serves the gpu lane
    assert api.get(f"/v1/batches/{batch['id']}").json()["status"] == "in_progress"
    cancelling = api.post(f"/v1/batches/{batch['id']}/cancel").json()
    assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"]
    burst("remote")
    done = api.get(f"/v1/batches/{batch['id']}").json()
    assert done["status"] == "cancelled" and done["cancelled_at"]
    assert done["request_counts"] == {"total": 5, "completed": 0, "failed": 5}
    errors = lines_of(api, done["error_file_id"])
    assert sorted(x["custom_id"] for x in errors) == [str(n) for n in range(5)]
    assert {x["error"]["code"] for x in errors} == {"batch_cancelled"}
    assert get_redis().zcard(keys.queue_pending("gpu")) == 0
    again = api.post(f"/v1/batches/{batch['id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_a_finished_batch_cannot_be_cancelled(api, remote, burst):
    batch = create(api, upload(api, jsonl([line("a")]))["id"])
    burst("remote")
    response = api.post(f"/v1/batches/{batch['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "batch_not_cancellable"


def test_an_enqueue_step_run_twice_makes_no_second_task_or_line(api, remote, burst):
    from tasks.batches.runner import batch_run

    batch = create(api, upload(api, jsonl([local_line(str(n)) for n in range(4)]))["id"])
    burst("remote")
    # As if the runner had died before it recorded its progress: it runs again from line 1.
    get_redis().hset(keys.batch(batch["id"]), mapping={"cursor": 0, "enqueue_done": 0})
    assert batch_run(batch_id=batch["id"]) == "done"
    assert get_redis().zcard(keys.queue_pending("gpu")) == 4
    api.post(f"/v1/batches/{batch['id']}/cancel")
    burst("remote")
    done = api.get(f"/v1/batches/{batch['id']}").json()
    assert done["request_counts"] == {"total": 4, "completed": 0, "failed": 4}
    assert len(lines_of(api, done["error_file_id"])) == 4


def test_a_batch_past_its_window_expires_its_unrun_lines(api, remote, burst, settings):
    from tasks.lifecycle import deadlines_sweep

    settings.BATCH_WINDOW_SECONDS = 1
    batch = create(api, upload(api, jsonl([local_line("a"), local_line("b")]))["id"])
    burst("remote")

    def expired() -> bool:
        # The sweep, or the runner itself when the window (whole seconds, so as short as a
        # moment) passed while it ran, fails the unrun lines.
        deadlines_sweep()
        return batch_load(batch["id"]).status == "expired"

    wait_for(expired, what="the lines' deadline (the window) to pass")
    done = api.get(f"/v1/batches/{batch['id']}").json()
    assert done["status"] == "expired" and done["expired_at"]
    errors = lines_of(api, done["error_file_id"])
    assert sorted(x["custom_id"] for x in errors) == ["a", "b"]
    assert {x["error"]["code"] for x in errors} == {"batch_expired"}


def test_lines_not_yet_enqueued_at_expiry_are_written_as_expired(api, remote, burst, settings):
    settings.BATCH_WINDOW_SECONDS = 1
    batch = create(api, upload(api, jsonl([line("a"), line("b")]))["id"])
    wait_for(lambda: batch_load(batch["id"]).expired, what="the window to pass")
    burst("remote")
    done = api.get(f"/v1/batches/{batch['id']}").json()
    assert done["status"] == "expired"
    assert {x["error"]["code"] for x in lines_of(api, done["error_file_id"])} == {"batch_expired"}
    assert remote.seen == []


def test_a_batch_webhook_is_signed_and_names_the_final_status(api, remote, burst, settings):
    with FakeServer() as receiver:
        receiver.reply(Reply(200, {}))
        batch = create(api, upload(api, jsonl([line("a")]))["id"], webhook_url=f"{receiver.url}/h")
        burst("remote")
        burst("webhooks")
    [seen] = receiver.seen
    raw = json.dumps(seen.body, separators=(",", ":"))
    payload = Webhook(settings.WEBHOOK_SECRET).verify(raw, dict(seen.headers))
    assert payload["event"] == "batch.completed" and payload["batch"]["id"] == batch["id"]
    assert payload["batch"]["request_counts"]["completed"] == 1
    assert seen.headers["X-SOP-Batch-Id"] == batch["id"]
    assert json.loads(get_redis().hget(keys.batch(batch["id"]), "webhook"))["state"] == "delivered"


def test_status_and_metrics_show_an_active_batch_with_live_counts(api, client, remote, burst):
    batch = create(api, upload(api, jsonl([local_line(str(n)) for n in range(3)]))["id"])
    burst("remote")  # in progress: its lines wait in the gpu lane
    status = api.get("/api/v1/monitor/status").json()["batches"]
    assert status["active"] == 1 and status["by_status"] == {"in_progress": 1}
    assert status["lines_waiting"] == 3
    [row] = status["list"]
    assert row["id"] == batch["id"] and row["request_counts"]["total"] == 3
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_KEY}").content.decode()
    assert 'sop_llm_batches_total{status="created"} 1' in text
    assert 'sop_llm_batches_active{status="in_progress"} 1' in text
    assert "sop_llm_batch_lines_waiting 3" in text
    api.post(f"/v1/batches/{batch['id']}/cancel")
    burst("remote")
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_KEY}").content.decode()
    assert 'sop_llm_batches_total{status="cancelled"} 1' in text
    assert "sop_llm_batch_lines_waiting 0" in text
    assert api.get("/api/v1/monitor/status").json()["batches"]["active"] == 0


def test_batch_status_changes_reach_the_monitor_websocket(api, remote, burst):
    async def scenario():
        path = f"/ws/monitor?token={API_KEY}"
        communicator = WebsocketCommunicator(application, path)
        assert (await communicator.connect())[0]
        await communicator.send_to(json.dumps({"types": BATCH_EVENTS}))
        assert json.loads(await communicator.receive_from(timeout=5))["type"] == "filter.ok"
        # In the loop's own thread (rq's worker needs the main thread); the events wait in the
        # subscription meanwhile.
        batch = create(api, upload(api, jsonl([line("a")]))["id"])
        burst("remote")
        seen = [json.loads(await communicator.receive_from(timeout=5)) for _ in BATCH_EVENTS]
        await communicator.disconnect()
        return batch, seen

    batch, seen = asyncio.run(scenario())
    assert [e["type"] for e in seen] == BATCH_EVENTS
    assert {e["batch_id"] for e in seen} == {batch["id"]}
    assert seen[-1]["request_counts"] == {"total": 1, "completed": 1, "failed": 0}


BATCH_EVENTS = ["batch.validating", "batch.in_progress", "batch.completed"]


def test_a_large_batch_leaves_room_in_the_lane_for_interactive_requests(api, remote, settings):
    from tasks.batches.runner import batch_run

    settings.QUEUE_MAX_PENDING = 10  # batch lines may fill 8 of them
    batch = create(api, upload(api, jsonl([local_line(str(n)) for n in range(12)]))["id"])
    assert batch_run(batch_id=batch["id"]) == "later"  # a continuation goes on when there is room
    assert get_redis().zcard(keys.queue_pending("gpu")) == 8
    assert int(get_redis().hget(keys.batch(batch["id"]), "cursor")) == 8
    interactive = {"provider": "local", "model": "gemma", "prompt": "hi"}
    assert api.post("/api/v1/tasks", interactive, format="json").status_code == 202
