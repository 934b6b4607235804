"""A /v1 request waiting for its task never outlives Redis: a Redis that stops answering turns
the wait into a 503 (or, mid-stream, an error event) in OpenAI's shape, not a hang."""

import json
import signal
import subprocess
import threading
import time

import pytest
import requests

from tasks.queue import rq_queue
from tests.conftest import API_KEY, _redis_answers, free_port, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def _waiting_call(base: str, **extra) -> tuple[threading.Thread, dict]:
    """POST with no worker to answer: once the task exists, the request only waits."""
    answer: dict = {}

    def call():
        answer["response"] = requests.post(
            f"{base}/v1/chat/completions", json={**BODY, **extra}, headers=AUTH, timeout=60
        )

    thread = threading.Thread(target=call)
    thread.start()
    # The rq job is the creation's last write: after it the request only waits.
    wait_for(lambda: rq_queue("remote").count, what="the task to be created")
    return thread, answer


def _paused_mid_wait(redis_server, processes, **extra) -> requests.Response:
    """POST with no worker to answer (the request waits), then pause Redis."""
    base = processes.web(REDIS_URL=redis_server.url, REDIS_RECONNECT_GRACE_SECONDS="1")
    thread, answer = _waiting_call(base, **extra)
    redis_server.send_signal(signal.SIGSTOP)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the request still waits on a Redis that does not answer"
    return answer["response"]


def test_a_wait_on_a_redis_that_stops_answering_is_a_503(pausable_redis, processes):
    response = _paused_mid_wait(pausable_redis, processes)
    assert response.status_code == 503
    error, task_id = response.json()["error"], response.headers["X-SOP-Task-Id"]
    assert error["code"] == "redis_unavailable"
    assert response.headers["x-should-retry"] == "false"  # the SDKs would run it again
    assert f"GET /api/v1/tasks/{task_id}" in error["message"]


def test_a_stream_on_a_redis_that_stops_answering_ends_with_an_error(pausable_redis, processes):
    response = _paused_mid_wait(pausable_redis, processes, stream=True)
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "redis_unavailable"
    # it names the task to fetch later (the id is also in X-SOP-Task-Id)
    assert f"GET /api/v1/tasks/{response.headers['X-SOP-Task-Id']}" in error["message"]


class RestartingRedis:
    """A Redis of the test's own that keeps every write (AOF, fsync always) across a restart."""

    def __init__(self, data_dir):
        self.port, self.dir = free_port(), data_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        args = ["--port", str(self.port), "--dir", str(self.dir), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL)
        wait_for(lambda: _redis_answers(self.url), what="the test's Redis")

    def restart(self, down_seconds: float) -> None:
        self.proc.kill()
        self.proc.wait()
        time.sleep(down_seconds)  # the blip itself: this long, nothing listens
        self.start()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def restarting_redis(tmp_path, settings):
    server = RestartingRedis(tmp_path)
    settings.REDIS_URL = server.url
    yield server
    server.stop()


def test_a_wait_rides_out_a_one_second_redis_restart_and_answers(restarting_redis, processes):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("Hello.", prompt_tokens=3, completion_tokens=2)))
        env = {"REDIS_URL": restarting_redis.url, "OPENAI_BASE_URL": f"{remote.url}/v1"}
        env["OPENAI_API_KEY"] = "sk-fake-remote"
        thread, answer = _waiting_call(processes.web(**env))
        restarting_redis.restart(down_seconds=1.0)
        processes.worker("remote", **env)
        thread.join(timeout=60)
    response = answer["response"]
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello."
    assert len(remote.seen) == 1  # run once
