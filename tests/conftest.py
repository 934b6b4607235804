import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
import requests
from rest_framework.test import APIClient

from bench.common import wait_until
from sop_llm.core import keys
from sop_llm.core.redis import get_redis, get_rq_redis

ROOT = Path(__file__).resolve().parent.parent
API_KEY = os.environ["SOP_LLM_API_KEYS"].split(",")[0]
STARTUP_TIMEOUT_SECONDS = 60


@pytest.fixture(autouse=True)
def redis_prefix(settings):
    """Every test lives under its own key prefix; its keys are deleted afterwards."""
    settings.REDIS_KEY_PREFIX = f"{os.environ['REDIS_KEY_PREFIX']}{uuid.uuid4().hex[:6]}:"
    yield settings.REDIS_KEY_PREFIX
    _delete_matching(f"{settings.REDIS_KEY_PREFIX}*")
    _delete_matching(f"rq:*{settings.REDIS_KEY_PREFIX}*")
    _forget_queues(settings.REDIS_KEY_PREFIX)


def _forget_queues(prefix: str) -> None:
    """rq lists every queue it has seen in one set; drop this test's queues from it."""
    try:
        client = get_rq_redis()
        stale = [q for q in client.smembers("rq:queues") if prefix.encode() in q]
        if stale:
            client.srem("rq:queues", *stale)
    except Exception:
        pass


def _delete_matching(pattern: str) -> None:
    try:
        client = get_rq_redis()
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    except Exception:  # a test that stopped Redis cleans nothing; its prefix is unique anyway
        pass


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(prefix: str, **extra: str) -> dict:
    env = {**os.environ, "REDIS_KEY_PREFIX": prefix, "DJANGO_SETTINGS_MODULE": "sop_llm.settings"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Processes:
    """Real service processes (daphne, rq workers) for one test, stopped at its end."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], **env: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=child_env(self.prefix, **env), start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def worker(self, *lanes: str, gpu: bool = False, **env: str) -> subprocess.Popen:
        cls = "tasks.worker.workers.GpuWorker" if gpu else "tasks.worker.workers.HeartbeatWorker"
        queues = [f"{self.prefix}{lane}" for lane in lanes]
        before = set(get_redis().keys(keys.worker_alive("*")))
        proc = self.start(
            [sys.executable, "manage.py", "rqworker", "--worker-class", cls, *queues], **env
        )
        wait_for(
            lambda: set(get_redis().keys(keys.worker_alive("*"))) - before or _died(proc),
            what=f"worker {lanes}",
        )
        assert proc.poll() is None, f"worker {lanes} exited with {proc.returncode}"
        return proc

    def web(self, **env: str) -> str:
        port = free_port()
        proc = self.start(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "sop_llm.asgi:application",
            ],
            **env,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url) or _died(proc), what="web server")
        assert proc.poll() is None, f"web server exited with {proc.returncode}"
        return url

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _died(proc: subprocess.Popen) -> bool:
    return proc.poll() is not None


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def wait_for(condition, *, what: str, timeout: float = STARTUP_TIMEOUT_SECONDS, every=0.05):
    """Poll a condition that has a real event behind it (a port opening, a key appearing);
    a test failure, not an error, when it never comes."""
    try:
        return wait_until(condition, timeout=timeout, every=every, what=what)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


@pytest.fixture
def processes(redis_prefix):
    group = Processes(redis_prefix)
    yield group
    group.stop_all()


@pytest.fixture
def burst():
    """Run an in-process rq worker over a lane until its queue is empty."""
    from tasks.queue import rq_queue
    from tasks.worker.workers import HeartbeatWorker

    def run(lane: str) -> None:
        worker = HeartbeatWorker([rq_queue(lane)], connection=get_rq_redis())
        worker.work(burst=True, logging_level="WARNING")

    return run


def _redis_answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def pausable_redis(settings):
    """A Redis of this test's own, so it can be paused (SIGSTOP) like a hung server."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    server.url = settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: _redis_answers(server.url), what="the test's Redis")
    yield server
    server.send_signal(signal.SIGCONT)
    server.terminate()
    server.wait()
