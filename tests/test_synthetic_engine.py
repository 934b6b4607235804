"""The synthetic local engine (LOCAL_ENGINE=synthetic, benchmarks and tests only): the real
Sequence rules in-process, and whole, ordered streams through the real service."""

import json
import threading
import time

import pytest
import requests

from models_gpu.engine.synthetic import SyntheticEngine, synthetic_text
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, SamplingParams
from tasks.relay import restarted
from tests.conftest import API_KEY, wait_for

PROMPT = [2, 105, 2364, 107]


@pytest.fixture
def engine():
    engine = SyntheticEngine(slots=4, n_ctx=4096, step_ms=2, model_name="synthetic")
    yield engine
    engine.close()


def _request(max_tokens: int, **params) -> GenerateRequest:
    return GenerateRequest(model="m", prompt="x", params=SamplingParams(max_tokens, **params))


def _generate(engine, request: GenerateRequest, **kw):
    return engine.generate(request, prompt_tokens=PROMPT, model_name="synthetic", **kw)


def test_the_synthetic_engine_answers_its_canned_text_to_max_tokens_streaming_every_piece(engine):
    pieces: list[str] = []
    request = _request(30)
    request.on_token = pieces.append
    result = _generate(engine, request)
    assert result.text == "".join(pieces) == synthetic_text(30)
    assert (result.finish_reason, result.usage.completion_tokens) == ("length", 30)


def test_a_stop_string_ends_a_synthetic_answer_before_it(engine):
    result = _generate(engine, _request(60), stops=[" mill"])
    assert result.finish_reason == "stop"
    assert result.text == synthetic_text(60).split(" mill")[0]


def test_sequences_beyond_the_slots_wait_their_turn_and_all_finish(engine):
    results = [None] * 10

    def run(i: int) -> None:
        results[i] = _generate(engine, _request(5 + i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.text for r in results] == [synthetic_text(5 + i) for i in range(10)]
    assert max(r.timings["batch_size_max"] for r in results) == 4


def test_a_cancelled_synthetic_answer_stops_with_cancelled(engine):
    request = _request(1000)
    seen: list[str] = []
    request.on_token = seen.append
    request.is_cancelled = lambda: len(seen) >= 3
    with pytest.raises(ProviderError) as caught:
        engine.generate(request, prompt_tokens=PROMPT, model_name="synthetic")
    assert caught.value.code == "cancelled"
    assert len(seen) < 1000
    wait_for(lambda: engine.busy() == 0, what="its slot given back", timeout=5)


def test_structured_output_and_logprobs_are_refused_not_ignored(engine):
    with pytest.raises(ProviderError, match="structured output"):
        _generate(engine, _request(5), constraint='start: "x"')
    with pytest.raises(ProviderError, match="logprobs"):
        _generate(engine, _request(5, logprobs=True))


def test_the_creation_event_arriving_after_the_first_tokens_does_not_restart_a_stream():
    # A busy GPU worker can claim a task between its creation's write and its task.queued
    # event; only a requeue (which names its reason) means the answer starts over.
    created = {"type": "task.queued", "task_id": "t", "lane": "gpu", "provider": "local"}
    requeued = {"type": "task.queued", "task_id": "t", "lane": "gpu", "reason": "worker_lost"}
    assert not restarted(created, (1, 1))
    assert restarted(requeued, (1, 1))


def _stream(base: str, max_tokens: int) -> tuple[str, str, dict]:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": "Tell me about the mill."}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {API_KEY}"}
    text, finish, usage = [], None, None
    url = f"{base}/v1/chat/completions"
    with requests.post(url, json=body, headers=headers, stream=True, timeout=60) as response:
        assert response.status_code == 200, response.text
        for line in response.iter_lines():
            if line.startswith(b"data: {"):
                chunk = json.loads(line[6:])
                assert "error" not in chunk, chunk
                usage = chunk.get("usage") or usage
                for choice in chunk["choices"]:
                    text.append(choice["delta"].get("content") or "")
                    finish = choice.get("finish_reason") or finish
    return "".join(text), finish, usage


@pytest.mark.slow
def test_concurrent_streams_through_the_service_on_the_synthetic_engine_come_whole_and_in_order(
    processes,
):
    base = processes.web(GPU_SLOTS="4")
    processes.worker(
        "gpu", gpu=True, GPU_SLOTS="4", LOCAL_ENGINE="synthetic", SYNTHETIC_STEP_MS="5"
    )
    out: dict[int, tuple] = {}

    def client(i: int) -> None:
        out[i] = tuple(_stream(base, 20 + i) for _ in range(2))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(6):
        for text, finish, usage in out[i]:
            assert text == synthetic_text(20 + i)
            assert finish == "length" and usage["completion_tokens"] == 20 + i


class _InlineRecorder:
    """A callback that declares itself cheap and thread-safe, as TokenStream does."""

    runs_inline = True

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def __call__(self, text: str) -> None:
        self.calls.append((threading.current_thread().name, text))


def test_an_inline_callback_gets_its_tokens_on_the_decode_thread_in_order(engine):
    recorder, request = _InlineRecorder(), _request(25)
    request.on_token = recorder
    result = _generate(engine, request)
    assert {thread for thread, _ in recorder.calls} == {"synthetic-decode"}
    assert "".join(text for _, text in recorder.calls) == result.text == synthetic_text(25)


def test_a_plain_callback_still_gets_its_tokens_on_the_callers_thread(engine):
    threads: list[str] = []
    request = _request(10)
    request.on_token = lambda text: threads.append(threading.current_thread().name)
    _generate(engine, request)
    assert set(threads) == {threading.current_thread().name} and len(threads) == 10


def test_a_token_stream_run_on_the_decode_thread_publishes_the_whole_text_in_order(engine):
    from sop_llm.core import keys
    from sop_llm.core.redis import get_redis
    from sop_llm.core.telemetry.events import TokenStream

    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.pubsub_task_tokens("inline-stream"))
    request, stream = _request(40), TokenStream("inline-stream")
    request.on_token = stream
    _generate(engine, request)
    stream.close()  # returns once every token is published
    events, deadline = [], time.monotonic() + 5
    while sum(e["tokens"] for e in events) < 40 and time.monotonic() < deadline:
        if (message := pubsub.get_message(timeout=0.2)) is not None:
            events.append(json.loads(message["data"]))
    assert "".join(e["text"] for e in events) == synthetic_text(40)
    assert [e["index"] for e in events] == sorted(e["index"] for e in events)
    pubsub.close()


def _token(index: int, text: str, attempt: int = 1) -> dict:
    return {"type": "task.token", "text": text, "index": index, "run": 1, "attempt": attempt}


def test_token_events_that_piled_up_go_out_as_one_chunk_up_to_a_final_or_a_restart():
    from tasks.relay import Relay

    relay = Relay()
    assert relay.batch([_token(0, "a"), _token(1, "b"), _token(2, "c")]) == ("abc", None)
    assert relay.batch([_token(3, "d"), {"type": "task.completed"}, _token(4, "x")]) == (
        "d",
        "final",
    )
    assert relay.batch([_token(5, "e"), _token(0, "z", attempt=2)]) == ("e", "restarted")
    assert relay.sent == "abcde"
