"""Anthropic's Message Batches driven by the official `anthropic` SDK against real processes:
daphne, the GPU and remote workers, the real model, and a real HTTP server on 127.0.0.1 as the
remote vendor (issue 31). The runner and its exactly-once bookkeeping are the Batch API's."""

import os
import signal

import anthropic
import pytest

from tests.conftest import API_KEY, wait_for
from tests.fakes.servers import FakeServer, Reply, anthropic_message
from tests.keyring import issue

pytestmark = pytest.mark.slow
VENDOR_KEY = "sk-ant-vendor-key-246"


@pytest.fixture
def vendor():
    with FakeServer() as fake:
        fake.reply(Reply(200, anthropic_message("done")))
        yield fake


def start(processes, vendor, *, gpu: bool = False):
    """-> (the client, the remote worker's process, its environment)."""
    env = {"ANTHROPIC_BASE_URL": vendor.url, "ANTHROPIC_API_KEY": VENDOR_KEY}
    base = processes.web(**env)
    remote = processes.worker("remote", **env)
    if gpu:
        processes.worker("gpu", gpu=True, LLAMA_THREADS="1")
    client = anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0, timeout=60)
    return client, remote, env


def request(custom_id: str, model: str = "anthropic/claude-test", **params) -> dict:
    params = {"model": model, "max_tokens": 4, **params}
    params.setdefault("messages", [{"role": "user", "content": custom_id}])
    return {"custom_id": custom_id, "params": params}


def ended(client, batch_id: str, timeout: float = 240):
    return wait_for(
        lambda: (
            (b := client.messages.batches.retrieve(batch_id)).processing_status == "ended" and b
        ),
        what=f"message batch {batch_id} to end",
        timeout=timeout,
        every=0.2,
    )


def test_twenty_mixed_requests_each_give_one_result_after_a_kill_9_of_the_runner(processes, vendor):
    vendor.script[0] = Reply(200, anthropic_message("done"), delay=0.4)
    client, runner, env = start(processes, vendor, gpu=True)
    local = {"temperature": 0, "top_k": 1, "max_tokens": 3}
    requests = [
        request(f"local-{n}", "local/gemma", **local) if n % 2 else request(f"remote-{n}")
        for n in range(20)
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.id.startswith("msgbatch_")
    assert batch.request_counts.processing == 20
    wait_for(lambda: len(vendor.seen) >= 3, what="a few remote requests to be under way")
    os.kill(runner.pid, signal.SIGKILL)  # mid-request: that line's task is lost with it
    runner.wait()
    processes.worker("remote", **env)  # recovers the lost task at start-up
    done = ended(client, batch.id)
    counts = done.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (20, 0, 0)
    assert len(vendor.seen) > 10  # the killed request was sent again: it did get lost
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == sorted(r["custom_id"] for r in requests)
    by_id = {r.custom_id: r.result for r in results}
    assert (
        by_id["remote-0"].type == "succeeded"
        and by_id["remote-0"].message.content[0].text == "done"
    )
    assert by_id["local-1"].message.model == "local/gemma"
    assert 0 < by_id["local-1"].message.usage.output_tokens <= 3


def test_another_tenants_batch_is_not_found_and_not_listed(processes, vendor):
    client, _, _ = start(processes, vendor)
    batch = client.messages.batches.create(requests=[request("a"), request("b")])
    assert ended(client, batch.id).request_counts.succeeded == 2
    _, key = issue("tasks", name="another-tenant")
    other = client.with_options(api_key=key)
    for call in (
        other.messages.batches.retrieve,
        other.messages.batches.cancel,
        other.messages.batches.results,
    ):
        with pytest.raises(anthropic.NotFoundError) as missing:
            call(batch.id)
        assert missing.value.body["error"]["type"] == "not_found_error"
    assert [b.id for b in other.messages.batches.list()] == []
    assert [b.id for b in client.messages.batches.list()] == [batch.id]


def test_a_cancelled_batch_says_canceled_for_every_request_that_did_not_run(processes, vendor):
    vendor.script[0] = Reply(200, anthropic_message("slow"), delay=0.3)
    client, _, _ = start(processes, vendor)
    batch = client.messages.batches.create(requests=[request(f"c{n}") for n in range(15)])
    wait_for(lambda: len(vendor.seen) >= 2, what="a request or two to run")
    assert client.messages.batches.cancel(batch.id).processing_status in ("canceling", "ended")
    done = ended(client, batch.id)
    assert done.cancel_initiated_at and done.ended_at
    results = list(client.messages.batches.results(batch.id))
    types = [r.result.type for r in results]
    assert len(results) == 15 and set(types) <= {"succeeded", "canceled"}
    counts = done.request_counts
    assert (counts.succeeded, counts.canceled) == (
        types.count("succeeded"),
        types.count("canceled"),
    )
    assert counts.canceled > 0


def test_a_request_that_fails_at_the_vendor_is_errored_in_anthropics_shape(processes, vendor):
    refusal = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad model"}}
    vendor.script[:] = [Reply(400, refusal), Reply(200, anthropic_message("done"))]
    client, _, _ = start(processes, vendor)
    batch = client.messages.batches.create(requests=[request("x")])
    done = ended(client, batch.id)
    assert done.request_counts.errored == 1
    (line,) = list(client.messages.batches.results(batch.id))
    assert line.result.type == "errored" and "bad model" in line.result.error.error.message
