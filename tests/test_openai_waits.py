"""A /v1 request waiting for its task never outlives Redis: a Redis that stops answering turns
the wait into a 503 (or, mid-stream, an error event) in OpenAI's shape, not a hang."""

import json
import signal
import threading

import pytest
import requests

from tasks.queue import rq_queue
from tests.conftest import API_KEY, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _paused_mid_wait(redis_server, processes, **extra) -> requests.Response:
    """POST with no worker to answer (the request waits), then pause Redis."""
    base = processes.web(REDIS_URL=redis_server.url)
    answer: dict = {}

    def call():
        answer["response"] = requests.post(
            f"{base}/v1/chat/completions", json={**BODY, **extra}, headers=AUTH, timeout=60
        )

    thread = threading.Thread(target=call)
    thread.start()
    # The rq job is the creation's last write: after it the request only waits.
    wait_for(lambda: rq_queue("remote").count, what="the task to be created")
    redis_server.send_signal(signal.SIGSTOP)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the request still waits on a Redis that does not answer"
    return answer["response"]


def test_a_wait_on_a_redis_that_stops_answering_is_a_503(pausable_redis, processes):
    response = _paused_mid_wait(pausable_redis, processes)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "redis_unavailable"
    assert response.headers["X-SOP-Task-Id"]


def test_a_stream_on_a_redis_that_stops_answering_ends_with_an_error(pausable_redis, processes):
    response = _paused_mid_wait(pausable_redis, processes, stream=True)
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "redis_unavailable"
