"""What every scenario needs: timing statistics, the service's processes, a stub provider."""

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
MODEL_PATH = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(values: list[float]) -> dict:
    """Median and spread (min, max, p90/p99 when there are enough samples)."""
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(values),
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p90": pick(0.90),
        "p99": pick(0.99),
    }


def wait_until(condition, timeout: float = 120, every: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    try:
        import pynvml

        pynvml.nvmlInit()
        gpu = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
    except Exception:
        gpu = "none (CPU inference)"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": str(gpu),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@dataclass
class Service:
    """The real service (daphne + workers) on loopback, under a key prefix of its own."""

    redis_url: str
    key: str = "bench-" + uuid.uuid4().hex
    prefix: str = f"bench-{uuid.uuid4().hex[:8]}:"
    port: int = field(default_factory=free_port)
    procs: dict = field(default_factory=dict)
    extra_env: dict = field(default_factory=dict)  # e.g. a Sentinel deployment's settings

    @property
    def address(self) -> str:
        """Where the web process listens (a host's own address in bench.hosts)."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}

    def env(self, **extra) -> dict:
        return {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "SOP_LLM_API_KEYS": self.key,
            "REDIS_KEY_PREFIX": self.prefix,
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "sop_llm.settings",
            "QUEUE_MAX_PENDING": "100000",
            **{k: str(v) for k, v in {**self.extra_env, **extra}.items()},
        }

    def start(self, name: str, args: list[str], **env) -> subprocess.Popen:
        log = self._log_file(name)
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env(**env),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        if log not in (None, subprocess.DEVNULL):
            log.close()  # the child holds its own copy
        self.procs[name] = proc
        return proc

    def _log_file(self, name: str):
        """Where a process's log (stderr) goes: SOP_LLM_SERVICE_LOGS=<dir> keeps one file per
        process there; under pytest it is inherited, so a failed test shows it; else dropped."""
        folder = os.environ.get("SOP_LLM_SERVICE_LOGS")
        if not folder:
            return None if "PYTEST_CURRENT_TEST" in os.environ else subprocess.DEVNULL
        Path(folder).mkdir(parents=True, exist_ok=True)
        return open(Path(folder) / f"{self.prefix.rstrip(':')}-{name}.log", "ab")  # noqa: SIM115

    def web(self) -> None:
        self.start(
            "web",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                self.address,
                "-p",
                str(self.port),
                "sop_llm.asgi:application",
            ],
        )
        wait_until(self._answers, what="the web server")

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def worker(self, name: str, lane: str, **env) -> None:
        cls = (
            "tasks.worker.workers.GpuWorker"
            if lane == "gpu"
            else "tasks.worker.workers.HeartbeatWorker"
        )
        self.start(
            name,
            [
                sys.executable,
                "manage.py",
                "rqworker",
                "--worker-class",
                cls,
                f"{self.prefix}{lane}",
            ],
            **env,
        )

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def post(self, path: str, body: dict, session=None, **headers) -> requests.Response:
        return (session or requests).post(
            f"{self.url}{path}", json=body, timeout=300, headers={**self.headers, **headers}
        )

    def get(self, path: str, session=None) -> requests.Response:
        return (session or requests).get(f"{self.url}{path}", headers=self.headers, timeout=60)


STUB_SOURCE = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = json.dumps({"id": "stub", "object": "chat.completion", "model": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY))); self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a): pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def start_stub() -> tuple[subprocess.Popen, str]:
    """A zero-latency OpenAI-compatible server in its own process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STUB_SOURCE, str(port)], start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    wait_until(lambda: _stub_up(url), what="the stub provider")
    return proc, url


def _stub_up(url: str) -> bool:
    try:
        return requests.post(f"{url}/chat/completions", json={}, timeout=1).ok
    except requests.RequestException:
        return False


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
