import time

from tests.conftest import API_KEY


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
