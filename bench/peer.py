"""Scenario 2: llama-cpp-python's own OpenAI-compatible server vs ours, same model."""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import requests

from bench.common import MODEL_PATH, Service, free_port, summary, wait_until
from bench.engine import LIST_SCHEMA, PARAMS, PROMPT


def available() -> bool:
    return all(
        importlib.util.find_spec(m)
        for m in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
    )


def _timed(url: str, body: dict, headers: dict, session) -> tuple[float, int]:
    started = time.perf_counter()
    response = session.post(url, json=body, headers=headers, timeout=300)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()["usage"]["completion_tokens"]


def _pair(peer: tuple, ours: tuple, session, reps: int) -> tuple[dict, dict]:
    """Alternate peer and ours request by request, so drift hits both alike."""
    for url, body, headers in (peer, ours):
        _timed(url, body, headers, session)  # warm-up
    runs = {"peer": [], "ours": []}
    for _ in range(reps):
        runs["peer"].append(_timed(*peer, session))
        runs["ours"].append(_timed(*ours, session))
    return tuple(
        {
            "latency_ms": summary([s * 1000 for s, _ in r]),
            "tokens_per_s": summary([n / s for s, n in r]),
            "completion_tokens": r[-1][1],
        }
        for r in (runs["peer"], runs["ours"])
    )


def peer_server(svc: Service, session, reps: int) -> dict:
    if not available():
        return {"skipped": "llama-cpp-python[server] is not installed (make bench installs it)"}
    port = free_port()
    peer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(MODEL_PATH),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--n_threads",
            str(os.cpu_count()),
            "--chat_format",
            "gemma",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _up(f"http://127.0.0.1:{port}/v1/models"), what="the peer server")
        plain = {"prompt": PROMPT, "max_tokens": 128, **PARAMS}
        peer_url, ours_url = f"http://127.0.0.1:{port}/v1/completions", f"{svc.url}/v1/completions"
        result = {}
        result["peer_plain"], result["ours_plain"] = _pair(
            (peer_url, {**plain, "model": "x"}, {}),
            (ours_url, {**plain, "model": "gemma"}, svc.headers),
            session,
            reps,
        )
        # The peer refuses OpenAI's json_schema shape; its own is json_object + schema.
        peer_fmt = {"type": "json_object", "schema": LIST_SCHEMA}
        ours_fmt = {"type": "json_schema", "json_schema": {"name": "l", "schema": LIST_SCHEMA}}
        structured = {"prompt": "A JSON list of numbered flags:", "max_tokens": 400, **PARAMS}
        result["peer_structured"], result["ours_structured"] = _pair(
            (peer_url, {**structured, "model": "x", "response_format": peer_fmt}, {}),
            (ours_url, {**structured, "model": "gemma", "response_format": ours_fmt}, svc.headers),
            session,
            reps,
        )
    finally:
        os.killpg(peer.pid, signal.SIGTERM)
        peer.wait(timeout=30)
    med = lambda k: result[k]["tokens_per_s"]["median"]  # noqa: E731
    result["plain_ratio"] = med("ours_plain") / med("peer_plain")
    result["structured_ratio"] = med("ours_structured") / med("peer_structured")
    return result


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False
