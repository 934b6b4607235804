"""Scenario 8: the Batch API against the zero-latency stub, and the same requests as plain
POSTs, on the same workers: create -> completed time, lines/s, and Redis bytes per line."""

import json
import time

import redis
import requests

from bench.common import Service, wait_until
from bench.pipeline import _completed, _submit_many

SAMPLED_SESSIONS = 200


def batch_vs_posts(svc: Service, client: redis.Redis, stub_url: str, lines: int) -> dict:
    names = [f"batch-remote-{n}" for n in range(2)]
    for name in names:
        svc.worker(name, "remote", OPENAI_COMPATIBLE_BASE_URL=stub_url)
    wait_until(
        lambda: len(client.keys(f"{svc.prefix}worker:alive:*")) >= len(names),
        what="remote workers",
    )
    try:
        plain = _plain(svc, client, stub_url, lines)
        batch = _batch(svc, client, lines)
    finally:
        for name in names:
            svc.stop(name)
    return {
        "lines": lines,
        "workers": len(names),
        "plain": plain,
        "batch": batch,
        "ratio": batch["lines_per_s"] / plain["tasks_per_s"],
    }


def _message(n: int) -> list[dict]:
    return [{"role": "user", "content": f"request {n}"}]


def _plain(svc: Service, client: redis.Redis, stub_url: str, lines: int) -> dict:
    bodies = [
        {
            "provider": "openai_compatible",
            "model": "stub",
            "messages": _message(n),
            "params": {"max_tokens": 4},
            "options": {"base_url": stub_url},
        }
        for n in range(lines)
    ]
    before, started = _completed(client, svc), time.perf_counter()
    _submit_many(svc, bodies, clients=16)
    wait_until(
        lambda: _completed(client, svc) >= before + lines,
        timeout=1800,
        every=0.01,
        what="every plain task to complete",
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tasks_per_s": lines / seconds}


def _jsonl(lines: int) -> bytes:
    rows = (
        {
            "custom_id": f"req-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "openai_compatible/stub", "messages": _message(n), "max_tokens": 4},
        }
        for n in range(lines)
    )
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _upload(svc: Service, content: bytes) -> str:
    upload = requests.post(
        f"{svc.url}/v1/files",
        headers=svc.headers,
        data={"purpose": "batch"},
        files={"file": ("bench.jsonl", content)},
        timeout=300,
    )
    upload.raise_for_status()
    return upload.json()["id"]


def _batch(svc: Service, client: redis.Redis, lines: int) -> dict:
    started = time.perf_counter()
    file_id = _upload(svc, _jsonl(lines))
    upload_s = time.perf_counter() - started
    used_before = client.info("memory")["used_memory"]
    started = time.perf_counter()
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    batch_id = svc.post("/v1/batches", body).json()["id"]
    seen: dict[str, float] = {}
    session = requests.Session()

    def finished() -> dict | None:
        now = svc.get(f"/v1/batches/{batch_id}", session).json()
        seen.setdefault(now["status"], time.perf_counter() - started)
        return now if now["status"] in ("completed", "failed", "expired", "cancelled") else None

    done = wait_until(finished, timeout=1800, every=0.05, what="the batch to complete")
    seconds = time.perf_counter() - started
    assert done["status"] == "completed" and done["request_counts"]["completed"] == lines, done
    return {
        "upload_s": upload_s,
        "seconds": seconds,
        "lines_per_s": lines / seconds,
        "in_progress_after_s": seen.get("in_progress"),
        "request_counts": done["request_counts"],
        "memory": _memory(svc, client, done, lines, used_before),
    }


def _memory(svc: Service, client: redis.Redis, done: dict, lines: int, used_before: int) -> dict:
    """MEMORY USAGE of what a batch keeps: its own hash (counters: the same for any size),
    its output file, and the tasks its lines ran (sampled)."""
    prefix, batch_id = svc.prefix, done["id"]
    sessions = [
        f"{prefix}session:{batch_id.removeprefix('batch_')}-{n}"
        for n in range(1, lines + 1, max(1, lines // SAMPLED_SESSIONS))
    ]
    per_task = [
        (client.memory_usage(key, samples=0) or 0)
        + (client.memory_usage(f"{key}:timeline", samples=0) or 0)
        for key in sessions
    ]
    output = client.memory_usage(f"{prefix}file:{done['output_file_id']}:content", samples=0)
    return {
        "batch_hash_bytes": client.memory_usage(f"{prefix}batch:{batch_id}", samples=0),
        "output_bytes_per_line": round(output / lines),
        "task_bytes_per_line": round(sum(per_task) / len(per_task)),
        "used_memory_delta_per_line": round(
            (client.info("memory")["used_memory"] - used_before) / lines
        ),
    }
