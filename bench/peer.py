"""Scenario 2: llama-cpp-python's own OpenAI-compatible server vs ours, same model."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import requests

from bench.common import MODEL_PATH, Service, free_port, summary, wait_until
from bench.engine import LIST_SCHEMA, PARAMS, PROMPT


def available() -> bool:
    return all(
        importlib.util.find_spec(m)
        for m in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
    )


def _timed(url: str, body: dict, headers: dict, session) -> tuple[float, int, bool]:
    """(seconds, completion tokens, answer valid against LIST_SCHEMA when one was asked)."""
    started = time.perf_counter()
    response = session.post(url, json=body, headers=headers, timeout=300)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    data = response.json()
    choice = data["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    return elapsed, data["usage"]["completion_tokens"], _valid(text)


def _valid(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), LIST_SCHEMA)
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


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
            "latency_ms": summary([s * 1000 for s, _, _ in r]),
            "tokens_per_s": summary([n / s for s, n, _ in r]),
            "completion_tokens": r[-1][1],
            "valid_json": sum(v for _, _, v in r),
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
        # Structured output through chat completions: the peer applies response_format
        # there only (on /v1/completions it ignores it and answers free text). It refuses
        # OpenAI's json_schema shape; its own is json_object + schema.
        peer_fmt = {"type": "json_object", "schema": LIST_SCHEMA}
        ours_fmt = {"type": "json_schema", "json_schema": {"name": "l", "schema": LIST_SCHEMA}}
        chat = {
            "messages": [{"role": "user", "content": "A JSON list of numbered flags."}],
            "max_tokens": 400,
            **PARAMS,
        }
        peer_chat, ours_chat = (
            f"http://127.0.0.1:{port}/v1/chat/completions",
            f"{svc.url}/v1/chat/completions",
        )
        result["peer_structured"], result["ours_structured"] = _pair(
            (peer_chat, {**chat, "model": "x", "response_format": peer_fmt}, {}),
            (ours_chat, {**chat, "model": "gemma", "response_format": ours_fmt}, svc.headers),
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
