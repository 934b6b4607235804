"""The Batch API driven by the official `openai` SDK against real processes: daphne, rq
workers, the real model, and a real HTTP server on 127.0.0.1 as the remote provider."""

import io
import json
import os
import signal

import openai
import pytest

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tests.conftest import API_KEY, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat

pytestmark = pytest.mark.slow
FINAL = ("completed", "failed", "expired", "cancelled")


@pytest.fixture
def remote():
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("done")))
        yield fake


def service(processes, remote, *, workers=("remote",), **env) -> openai.OpenAI:
    env = {"OPENAI_COMPATIBLE_BASE_URL": f"{remote.url}/v1", **env}
    base = processes.web(**env)
    for lane in workers:
        processes.worker(lane, gpu=lane == "gpu", **env)
    return openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=60)


def line(custom_id: str, model: str = "openai_compatible/m", **body) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": custom_id}], **body}
    body.setdefault("max_tokens", 4)
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def submit(client: openai.OpenAI, lines: list[dict], **extra):
    content = "".join(json.dumps(x) + "\n" for x in lines).encode()
    upload = client.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    return client.batches.create(
        input_file_id=upload.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        **extra,
    )


def finished(client: openai.OpenAI, batch_id: str, timeout: float = 120):
    return wait_for(
        lambda: (b := client.batches.retrieve(batch_id)).status in FINAL and b,
        what=f"batch {batch_id} to finish",
        timeout=timeout,
        every=0.2,
    )


def read(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def custom_ids(client, batch) -> list[str]:
    lines = read(client, batch.output_file_id) + read(client, batch.error_file_id)
    return sorted(x["custom_id"] for x in lines)


def test_the_sdk_workflow_upload_create_poll_and_read_both_files(processes, remote):
    client = service(processes, remote)
    remote.script.insert(0, Reply(400, {"error": {"message": "no such model"}}))  # line 1 only
    batch = submit(client, [line(f"r{n}") for n in range(1, 4)], metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.metadata == {"job": "nightly"}
    done = finished(client, batch.id)
    assert done.status == "completed" and done.completed_at and done.in_progress_at
    assert (done.request_counts.total, done.request_counts.completed) == (3, 2)
    out, errors = read(client, done.output_file_id), read(client, done.error_file_id)
    assert sorted(x["custom_id"] for x in out) == ["r2", "r3"]
    assert out[0]["response"]["body"]["choices"][0]["message"]["content"] == "done"
    assert [x["custom_id"] for x in errors] == ["r1"]
    assert "no such model" in errors[0]["response"]["body"]["error"]["message"]
    listed = client.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"


def test_cancelling_a_running_batch_accounts_for_every_line_once(processes, remote):
    remote.script[0] = Reply(200, openai_chat("slow"), delay=0.2)
    client = service(processes, remote)
    batch = submit(client, [line(f"c{n}") for n in range(30)])
    wait_for(
        lambda: client.batches.retrieve(batch.id).request_counts.completed >= 2,
        what="a few lines to finish",
        every=0.1,
    )
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    counts = done.request_counts
    assert counts.total == 30 and counts.completed + counts.failed == 30
    assert 2 <= counts.completed < 30
    assert custom_ids(client, done) == sorted(f"c{n}" for n in range(30))
    codes = {x["error"]["code"] for x in read(client, done.error_file_id)}
    assert codes == {"batch_cancelled"}


def test_a_batch_expires_when_its_window_passes(processes, remote):
    remote.script[0] = Reply(200, openai_chat("slow"), delay=0.3)
    client = service(processes, remote, BATCH_WINDOW_SECONDS="2")
    batch = submit(client, [line(f"e{n}") for n in range(20)])
    done = finished(client, batch.id)
    assert done.status == "expired" and done.expired_at
    assert custom_ids(client, done) == sorted(f"e{n}" for n in range(20))
    errors = read(client, done.error_file_id)
    assert errors and {x["error"]["code"] for x in errors} == {"batch_expired"}
    assert done.request_counts.completed == len(read(client, done.output_file_id)) > 0


def test_killing_the_enqueueing_worker_loses_and_duplicates_no_line(processes, remote):
    client = service(processes, remote, workers=())
    first = processes.worker("remote", OPENAI_COMPATIBLE_BASE_URL=f"{remote.url}/v1")
    total = 1500  # three chunks: the kill lands between two of them
    batch = submit(client, [line(f"k{n}") for n in range(total)])
    wait_for(
        lambda: 0 < int(get_redis().hget(keys.batch(batch.id), "cursor") or 0) < total,
        what="the runner to be part way through enqueueing",
        every=0.02,
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    for _ in range(2):
        processes.worker("remote", OPENAI_COMPATIBLE_BASE_URL=f"{remote.url}/v1")
    done = finished(client, batch.id, timeout=300)
    assert done.status == "completed"
    assert done.request_counts.completed == total and done.request_counts.failed == 0
    ids = custom_ids(client, done)
    assert len(ids) == total and ids == sorted(f"k{n}" for n in range(total))


def test_a_mixed_batch_runs_local_and_remote_lines(processes, remote):
    client = service(processes, remote, workers=("remote", "gpu"))
    lines = [
        line("local-1", model="gemma", max_tokens=3, temperature=0, seed=1),
        line("remote-1"),
        line("local-2", model="gemma", max_tokens=3, seed=2),
    ]
    done = finished(client, submit(client, lines).id, timeout=240)
    assert done.status == "completed" and done.request_counts.completed == 3
    out = {x["custom_id"]: x["response"]["body"] for x in read(client, done.output_file_id)}
    assert out["local-1"]["model"] == "gemma" and out["remote-1"]["model"] == "openai_compatible/m"
    assert out["local-1"]["usage"]["completion_tokens"] <= 3
    assert out["local-2"]["choices"][0]["message"]["content"] is not None
