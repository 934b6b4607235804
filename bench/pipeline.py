"""Scenarios 5 and 6: the pipeline without a model (a zero-latency stub provider), and scale."""

import concurrent.futures
import datetime as dt
import random
import threading
import time

import redis
import requests

from bench.common import Service, rss_mb, summary, wait_until


def _sessions(n: int) -> list[requests.Session]:
    return [requests.Session() for _ in range(n)]


def _submit_many(svc: Service, bodies: list[dict], clients: int) -> list[float]:
    """POST every body from `clients` threads (one keep-alive session each) -> latencies."""
    sessions = _sessions(clients)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        session = sessions[index]
        for body in bodies[index::clients]:
            started = time.perf_counter()
            response = svc.post("/api/v1/tasks", body, session=session)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 202, response.text
            with lock:
                latencies.append(elapsed)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return latencies


def _completed(client: redis.Redis, svc: Service) -> int:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return int(client.hget(f"{svc.prefix}stats:daily:{today}", "completed") or 0)


def throughput(
    svc: Service, client: redis.Redis, stub_url: str, tasks: int, worker_counts: tuple[int, ...]
) -> dict:
    body = {
        "provider": "openai_compatible",
        "model": "stub",
        "prompt": "hi",
        "options": {"base_url": stub_url},
        "params": {"max_tokens": 4},
    }
    out = {}
    for count in worker_counts:
        names = [f"remote-{count}-{n}" for n in range(count)]
        for name in names:
            svc.worker(name, "remote")
        wait_until(
            lambda c=count: len(client.keys(f"{svc.prefix}worker:alive:*")) >= c,
            what="remote workers",
        )
        before, started = _completed(client, svc), time.perf_counter()
        _submit_many(svc, [body] * tasks, clients=16)
        wait_until(
            lambda b=before: _completed(client, svc) >= b + tasks,
            timeout=600,
            every=0.01,
            what="every task to complete",
        )
        elapsed = time.perf_counter() - started
        out[f"{count}_workers"] = {
            "tasks": tasks,
            "seconds": elapsed,
            "tasks_per_s": tasks / elapsed,
        }
        out.setdefault("rss_mb", {}).update(
            {name: round(rss_mb(svc.procs[name].pid)) for name in names}
        )
        for name in names:
            svc.stop(name)
    out["rss_mb"]["web"] = round(rss_mb(svc.procs["web"].pid))
    return out


def post_latency(svc: Service, client: redis.Redis, clients: int, per_client: int) -> dict:
    """POST latency with `clients` concurrent clients and nobody consuming (pure ingest)."""
    body = {"provider": "openai", "model": "m", "prompt": "hi"}
    used_before = client.info("memory")["used_memory"]
    latencies = _submit_many(svc, [body] * (clients * per_client), clients)
    per_task = (client.info("memory")["used_memory"] - used_before) / len(latencies)
    return {
        "clients": clients,
        "latency_ms": summary(latencies),
        "redis_bytes_per_queued_task": round(per_task),
    }


def scale(svc: Service, client: redis.Redis, tasks: int) -> dict:
    """Scenario 6: `tasks` queued at once; ordering and the monitor stay sane."""
    rng = random.Random(7)
    bodies = [
        {
            "provider": "openai",
            "model": "m",
            "prompt": f"task {n}",
            "priority": rng.randint(-5, 5),
            "metadata": {"n": n},
        }
        for n in range(tasks)
    ]
    used_before = client.info("memory")["used_memory"]
    started = time.perf_counter()
    _submit_many(svc, bodies, clients=32)
    enqueue_s = time.perf_counter() - started
    memory = client.info("memory")["used_memory"] - used_before
    pending = client.zrange(f"{svc.prefix}queue:tasks:remote", 0, -1, withscores=True)
    order = [
        (int(client.hget(f"{svc.prefix}session:{t}", "priority")), score) for t, score in pending
    ]
    ordered = all((-a[0], a[1]) <= (-b[0], b[1]) for a, b in zip(order, order[1:], strict=False))
    deep = pending[-1][0]
    session = requests.Session()
    timings = {}
    for path in ("/api/v1/monitor/status", "/api/v1/monitor/queue", f"/api/v1/tasks/{deep}"):
        samples = []
        for _ in range(20):
            t0 = time.perf_counter()
            assert svc.get(path, session).ok
            samples.append((time.perf_counter() - t0) * 1000)
        timings[path.replace(deep, "{id}")] = summary(samples)
    return {
        "tasks": len(pending),
        "enqueue_per_s": tasks / enqueue_s,
        "redis_bytes_per_task": round(memory / tasks),
        "ordering_correct": ordered,
        "endpoint_ms": timings,
    }
