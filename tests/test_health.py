import http.client
import socket
import sys
import time

import pytest

from tests.conftest import API_KEY, free_port, wait_for


def test_health_answers_without_touching_redis(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = anon.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_ready_is_200_when_redis_answers(anon):
    response = anon.get("/ready", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    assert response.status_code == 200 and response.json()["redis"] == "ok"


def test_ready_needs_a_key(anon):
    assert anon.get("/ready").status_code == 401


def test_ready_is_a_quick_json_503_when_redis_is_unreachable(anon, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    started = time.monotonic()
    response = anon.get("/ready", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "redis_unavailable"
    assert response["Retry-After"] == "1"


def test_ready_is_503_within_a_second_when_redis_does_not_answer(anon, settings):
    import socket

    silent = socket.socket()  # accepts connections, never speaks: a hung Redis
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    started = time.monotonic()
    response = anon.get("/ready", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    silent.close()
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503


def test_every_request_path_is_a_503_within_a_second_when_redis_hangs(api, settings):
    import socket

    silent = socket.socket()  # accepts connections, never speaks: a hung Redis
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    settings.REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    body = {"provider": "openai", "model": "gpt-4o-mini", "prompt": "hi"}
    calls = [
        lambda: api.post("/api/v1/tasks", body, format="json"),
        lambda: api.get("/api/v1/tasks/" + "a" * 32),
        lambda: api.post("/api/v1/tasks/" + "a" * 32 + "/cancel"),
        lambda: api.get("/api/v1/monitor/queue"),
    ]
    try:
        for call in calls:
            started = time.monotonic()
            response = call()
            assert time.monotonic() - started < 1.0
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "redis_unavailable"
    finally:
        silent.close()


def _raw_get(port: int, path: str) -> http.client.HTTPResponse:
    """The status line as daphne sends it (requests would hide nothing, but be explicit)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Authorization": f"Bearer {API_KEY}"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.mark.slow
def test_a_429_from_the_real_web_server_says_too_many_requests(processes):
    port = int(processes.web(RATE_LIMIT_PER_MINUTE="1").rsplit(":", 1)[1])
    statuses = [_raw_get(port, "/ready") for _ in range(2)]
    assert [r.status for r in statuses] == [200, 429]
    assert statuses[1].reason == "Too Many Requests"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_ready_counts_uptime_from_the_process_start_not_the_first_request(processes):
    port, spawned = free_port(), time.time()
    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "sop_llm.asgi:application"]
    processes.start([sys.executable, *args])
    wait_for(lambda: _listening(port), what="daphne to listen")
    asked = time.time()
    uptime = _raw_get_json(port, "/ready")["uptime_seconds"]
    # Django's start-up (seconds) lies between the spawn and the first request.
    assert asked - spawned > 0.5
    assert uptime >= asked - spawned - 0.2
    assert uptime <= time.time() - spawned + 0.2


def _raw_get_json(port: int, path: str) -> dict:
    import requests

    auth = {"Authorization": f"Bearer {API_KEY}"}
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=auth, timeout=5).json()
