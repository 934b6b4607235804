"""Per-key limits: exact under 50 concurrent submissions to two real web processes."""

import concurrent.futures
import threading

import pytest
import requests

from tests.keyring import client_with, issue

SUBMISSIONS = 50


def body(**extra):
    return {
        "provider": "openai_compatible",
        "model": "fake-llm",
        "prompt": "hello",
        "options": {"base_url": "http://127.0.0.1:9/v1"},  # no worker runs: tasks stay queued
        **extra,
    }


def storm(urls: list[str], key: str, payload: dict) -> list[requests.Response]:
    """SUBMISSIONS POSTs released together, spread over the web processes."""
    gate = threading.Barrier(SUBMISSIONS)
    headers = {"Authorization": f"Bearer {key}"}

    def submit(n: int) -> requests.Response:
        gate.wait()
        return requests.post(
            f"{urls[n % len(urls)]}/api/v1/tasks", json=payload, headers=headers, timeout=60
        )

    with concurrent.futures.ThreadPoolExecutor(SUBMISSIONS) as pool:
        return list(pool.map(submit, range(SUBMISSIONS)))


@pytest.fixture
def webs(processes):
    return [processes.web(), processes.web()]


def split(responses) -> tuple[list, list]:
    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code == 429]
    assert len(accepted) + len(refused) == SUBMISSIONS, {r.status_code for r in responses}
    return accepted, refused


def test_max_queued_admits_exactly_that_many_under_50_concurrent_posts(webs):
    _, key = issue("tasks", name="burst", max_queued=7)
    accepted, refused = split(storm(webs, key, body()))
    assert len(accepted) == 7
    error = refused[0].json()["error"]
    assert error["code"] == "limit_max_queued" and "max_queued limit (7" in error["message"]
    assert all(r.headers["Retry-After"] == "5" for r in refused)


def test_tokens_per_day_admits_exactly_what_the_reservations_fit(webs):
    _, key = issue("tasks", name="thrifty", tokens_per_day=100)
    accepted, refused = split(storm(webs, key, body(params={"max_tokens": 9})))
    assert len(accepted) == 11  # 11 * 9 = 99 <= 100 < 12 * 9
    error = refused[0].json()["error"]
    assert (
        error["code"] == "limit_tokens_per_day" and "tokens_per_day limit (100)" in error["message"]
    )
    assert 0 < int(refused[0].headers["Retry-After"]) <= 86401  # until the next UTC day


def test_rpm_admits_exactly_that_many_requests_in_the_minute(webs):
    _, key = issue("tasks", name="chatty", rpm=13)
    accepted, refused = split(storm(webs, key, body()))
    assert len(accepted) == 13
    error = refused[0].json()["error"]
    assert error["code"] == "rate_limited" and "rpm limit of 13" in error["message"]
    assert int(refused[0].headers["Retry-After"]) >= 1


def test_one_tenant_s_limit_leaves_another_tenant_alone(webs):
    _, greedy = issue("tasks", name="greedy", max_queued=2)
    _, other = issue("tasks", name="other", max_queued=2)
    split(storm(webs, greedy, body()))
    assert client_with(other).post("/api/v1/tasks", body(), format="json").status_code == 202


def test_a_finished_task_gives_its_slot_back():
    _, key = issue("tasks", name="slots", max_queued=1)
    client = client_with(key)
    first = client.post("/api/v1/tasks", body(), format="json")
    assert client.post("/api/v1/tasks", body(), format="json").status_code == 429
    client.post(f"/api/v1/tasks/{first.json()['task_id']}/cancel")
    assert client.post("/api/v1/tasks", body(), format="json").status_code == 202


def test_an_idempotent_replay_costs_no_slot():
    _, key = issue("tasks", name="replays", max_queued=1)
    client = client_with(key)
    for _ in range(3):
        replay = client.post("/api/v1/tasks", body(), format="json", HTTP_IDEMPOTENCY_KEY="once")
        assert replay.status_code in (200, 202)


def test_a_priority_above_the_key_s_ceiling_is_refused_naming_it():
    _, key = issue("tasks", name="humble", max_priority=10)
    client = client_with(key)
    response = client.post("/api/v1/tasks", body(priority=100), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "priority" and "max_priority limit (10)" in error["message"]
    assert client.post("/api/v1/tasks", body(priority=10), format="json").status_code == 202


def test_the_openai_routes_count_against_the_same_limits():
    _, key = issue("tasks", name="v1-user", max_queued=1)
    client = client_with(key)
    assert client.post("/api/v1/tasks", body(), format="json").status_code == 202
    response = client.post(
        "/v1/completions", {"model": "openai_compatible/fake-llm", "prompt": "hi"}, format="json"
    )
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "limit_max_queued"
    assert response["Retry-After"] == "5"
