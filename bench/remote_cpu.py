"""CPU per remote request of each service process: `python -m bench.remote_cpu [N] [CLIENTS]`
(run from a checkout's root; it works on any revision of the service, so a before/after pair
is two runs of this file on two checkouts).

A Redis of its own, the OpenAI-compatible stub, one web process and REMOTE_WORKERS remote
workers at LOG_LEVEL (default WARNING); CLIENTS closed-loop clients send N requests to
/v1/chat/completions after a warm-up. Each process's CPU (utime + stime from /proc) over the
N requests, divided by N."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import requests

sys.path.insert(0, os.getcwd())

from bench.gateway import cpu_seconds  # noqa: E402
from tests.fakes.servers import FakeServer, Reply, openai_chat  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
WORKERS = int(os.environ.get("REMOTE_WORKERS", "2"))
KEY = "cpu-bench-key-0000000001"
# Where the worker class lives on this revision (issue 28 moved it).
WORKER_CLASS = (
    "tasks.worker.workers.HeartbeatWorker"
    if os.path.exists("tasks/worker/workers.py")
    else "tasks.worker.HeartbeatWorker"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_ms(pid: int) -> float:
    return cpu_seconds(pid) * 1000


def _wait(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _clients(base: str, count: int) -> float:
    """`count` requests over CLIENTS closed-loop clients -> seconds taken."""
    left = iter(range(count))
    lock = threading.Lock()
    body = {"model": "openai_compatible/m", "messages": [{"role": "user", "content": "hi"}]}

    def client():
        with requests.Session() as session:
            while True:
                with lock:
                    if next(left, None) is None:
                        return
                answer = session.post(
                    f"{base}/v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {KEY}"},
                    timeout=60,
                )
                answer.raise_for_status()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def main() -> None:
    redis_port, web_port = _port(), _port()
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    procs: dict[str, subprocess.Popen] = {}
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("hi", prompt_tokens=3, completion_tokens=1)))
        prefix = f"cpu-{uuid.uuid4().hex[:6]}:"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "sop_llm.settings",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "REDIS_KEY_PREFIX": prefix,
            "SOP_LLM_API_KEYS": KEY,
            "WEBHOOK_SECRET": "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "OPENAI_COMPATIBLE_BASE_URL": f"{fake.url}/v1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
        py = sys.executable
        try:
            procs["web"] = subprocess.Popen(
                [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port)]
                + ["sop_llm.asgi:application"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(WORKERS):
                procs[f"worker-{n + 1}"] = subprocess.Popen(
                    [py, "manage.py", "rqworker", "--worker-class"]
                    + [WORKER_CLASS, f"{prefix}remote"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            base = f"http://127.0.0.1:{web_port}"
            _wait(lambda: _answers(base), "the web process")
            _clients(base, 50)  # warm-up: imports, scripts, connections
            before = {name: _cpu_ms(p.pid) for name, p in procs.items()}
            before["redis"] = _cpu_ms(redis_proc.pid)
            seconds = _clients(base, N)
            after = {name: _cpu_ms(p.pid) for name, p in procs.items()}
            after["redis"] = _cpu_ms(redis_proc.pid)
        finally:  # Redis last, as `make run` stops them: a worker's stop still talks to it
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                proc.wait(timeout=30)
            redis_proc.send_signal(signal.SIGTERM)
            redis_proc.wait(timeout=30)
    per = {name: (after[name] - before[name]) / N for name in after}
    workers = sum(v for k, v in per.items() if k.startswith("worker"))
    print(
        f"{N} requests, {CLIENTS} clients, {WORKERS} remote workers, "
        f"{N / seconds:.0f} req/s; CPU ms per request: web {per['web']:.2f}, "
        f"remote workers {workers:.2f} ("
        + ", ".join(f"{k} {v:.2f}" for k, v in per.items() if k.startswith("worker"))
        + f"), redis {per['redis']:.2f}"
    )


if __name__ == "__main__":
    main()
