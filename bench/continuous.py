"""Scenario 7: continuous batching against llama.cpp's own `llama-server` (issue 17).

Aggregate generated tokens/s and latency p50 at 1, 2, 4 and 8 concurrent 128-token requests,
temperature 0, the same four prompts (request i gets prompt i mod 4), for:
- ours: the service with GPU_SLOTS=4 (1, 2 and 4 clients) and GPU_SLOTS=8 (8 clients);
- llama-server `-np 4` and `-np 8`: the same model file, `-t` = our LLAMA_THREADS (every core),
  the same KV layout as ours (one unified pool of n_ctx = 4096 cells, n_ctx / slots per slot:
  `-kvu --kv-unified-per-slot`);
- ours with GPU_SLOTS=1 (today's one-at-a-time engine).
llama-server gets `ignore_eos`, so its answers are exactly 128 tokens; ours (the API has no
ignore_eos) gets max_tokens 128 and its actual completion tokens are counted (the prompts are
story openings that run past 128 tokens: the report gives the mean tokens per answer).
Plus 4 clients with a JSON schema (ours: response_format json_schema, llguidance; llama-server:
its `json_schema` field, GBNF), and time to first token p50 of streams at 4 concurrent vs one
alone (ours: /v1/completions stream=true; llama-server: /completion stream). Within each
repetition the configurations take turns batch by batch (and the order flips every repetition),
so machine drift hits all of them alike.
"""

import json
import os
import signal
import statistics
import subprocess
import threading
import time
import uuid

import jsonschema
import redis
import requests

from bench import llama_server
from bench.common import MODEL_PATH, Service, free_port, wait_until
from bench.engine import LIST_SCHEMA

PROMPTS = [
    "Write a long story about a dragon who lived in the mountains. Once upon a time,",
    "Explain how a steam engine works, step by step.",
    "List the planets of the solar system and describe each one.",
    "Describe a busy market in a medieval town.",
]
STRUCTURED_PROMPT = "A JSON list of numbered flags:"
N_CTX = 4096


class Peer:
    """llama-server with `slots` parallel slots."""

    def __init__(self, binary, slots: int, threads: int, extra: tuple[str, ...] = ()):
        self.slots, self.port = slots, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-m",
                str(MODEL_PATH),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "-c",
                str(N_CTX),
                "-np",
                str(slots),
                "-kvu",
                "--kv-unified-per-slot",
                str(N_CTX // slots),
                "-t",
                str(threads),
                "-tb",
                str(threads),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._up, what=f"llama-server -np {slots}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"llama-server -np {self.slots} exited ({self.proc.returncode})")
        try:
            return requests.get(f"{self.url}/health", timeout=1).ok
        except requests.RequestException:
            return False

    def request(self, i: int, tokens: int, schema: bool, stream: bool) -> tuple[str, dict]:
        if schema:
            body = {"prompt": STRUCTURED_PROMPT, "n_predict": 400, "json_schema": LIST_SCHEMA}
        else:
            body = {"prompt": PROMPTS[i % len(PROMPTS)], "n_predict": tokens, "ignore_eos": True}
        return f"{self.url}/completion", {**body, "temperature": 0, "stream": stream}

    @staticmethod
    def parse(data: dict) -> tuple[str, int]:
        return data["content"], data["tokens_predicted"]

    @staticmethod
    def chunk_text(data: dict) -> str:
        return data.get("content") or ""

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Ours:
    """The service (web + one GPU worker) with `slots` GPU_SLOTS."""

    def __init__(self, redis_url: str, slots: int, threads: int, session, **load):
        self.slots = slots
        self.svc = Service(
            redis_url=redis_url,
            key="bench-" + uuid.uuid4().hex,
            prefix=f"bench-{uuid.uuid4().hex[:8]}:",
        )
        self.svc.web()
        self.svc.worker("gpu", "gpu", GPU_SLOTS=slots, LLAMA_THREADS=threads)
        loaded = self.svc.post("/api/v1/models/load", {"model": "gemma", **load}, session=session)
        loaded.raise_for_status()
        self.headers = self.svc.headers

    def request(self, i: int, tokens: int, schema: bool, stream: bool) -> tuple[str, dict]:
        if schema:
            fmt = {"type": "json_schema", "json_schema": {"name": "l", "schema": LIST_SCHEMA}}
            body = {"prompt": STRUCTURED_PROMPT, "max_tokens": 400, "response_format": fmt}
        else:
            body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens}
        return f"{self.svc.url}/v1/completions", {
            **body,
            "model": "gemma",
            "temperature": 0,
            "stream": stream,
        }

    @staticmethod
    def parse(data: dict) -> tuple[str, int]:
        return data["choices"][0]["text"], data["usage"]["completion_tokens"]

    @staticmethod
    def chunk_text(data: dict) -> str:
        choices = data.get("choices") or [{}]
        return choices[0].get("text") or ""

    def stop(self) -> None:
        self.svc.stop_all()
        client = redis.Redis.from_url(self.svc.redis_url)
        for pattern in (f"{self.svc.prefix}*", f"rq:*{self.svc.prefix}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])


def _one(target, i: int, tokens: int, schema: bool, stream: bool, out: list) -> None:
    url, body = target.request(i, tokens, schema, stream)
    headers = getattr(target, "headers", {})
    started = time.perf_counter()
    if not stream:
        response = requests.post(url, json=body, headers=headers, timeout=600)
        response.raise_for_status()
        text, n = target.parse(response.json())
        out[i] = {"s": time.perf_counter() - started, "tokens": n, "valid": _valid(text)}
        return
    first, pieces = None, 0
    with requests.post(url, json=body, headers=headers, timeout=600, stream=True) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            if target.chunk_text(json.loads(line[6:])):
                pieces += 1
                if first is None:
                    first = time.perf_counter() - started
    out[i] = {"s": time.perf_counter() - started, "ttft": first, "pieces": pieces}


def _valid(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), LIST_SCHEMA)
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


def batch(target, clients: int, tokens: int, schema=False, stream=False) -> dict:
    """`clients` requests at once; wall time from the first send to the last answer."""
    out = [None] * clients
    threads = [
        threading.Thread(target=_one, args=(target, i, tokens, schema, stream, out))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if any(o is None for o in out):
        raise RuntimeError(f"a request to {type(target).__name__} failed (see above)")
    return {"wall": wall, "runs": out}


def _cell(batches: list[dict]) -> dict:
    """Aggregate tokens/s (median over repetitions) and latency p50 (over every request)."""
    rates = [sum(r["tokens"] for r in b["runs"]) / b["wall"] for b in batches]
    runs = [r for b in batches for r in b["runs"]]
    return {
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_all": [round(x, 1) for x in rates],
        "latency_p50_ms": statistics.median(r["s"] for r in runs) * 1000,
        "mean_tokens": statistics.mean(r["tokens"] for r in runs),
        "valid_json": sum(r["valid"] for r in runs),
        "requests": len(runs),
    }


def _ttft(batches: list[dict]) -> dict:
    ttfts = [r["ttft"] * 1000 for b in batches for r in b["runs"] if r["ttft"] is not None]
    return {"p50_ms": statistics.median(ttfts) if ttfts else None, "n": len(ttfts)}


def continuous_batching(redis_url: str, session, size: dict, results: dict) -> dict:
    smoke = size["smoke"]
    threads = os.cpu_count() or 1
    binary = llama_server.binary()
    peer_skipped = None
    if not binary.exists():
        if smoke:
            peer_skipped = f"llama-server is not built ({binary}); the smoke run never builds it"
        else:
            try:
                binary = llama_server.build(log=lambda m: print(m, flush=True))
            except Exception as exc:  # noqa: BLE001 - a failed build skips the peer, not the run
                peer_skipped = f"building llama-server failed: {exc}"
    if peer_skipped:
        print(f"[bench] batching: llama-server rows skipped: {peer_skipped}", flush=True)
    clients, tokens, reps = size["clients"], size["tokens"], size["reps"]
    targets = {}
    try:
        targets["ours4"] = Ours(redis_url, 4, threads, session)
        if max(clients) > 4:
            targets["ours8"] = Ours(redis_url, 8, threads, session)
        if not smoke:
            targets["ours1"] = Ours(redis_url, 1, threads, session)
        if not peer_skipped:
            targets["np4"] = Peer(binary, 4, threads)
            if max(clients) > 4:
                targets["np8"] = Peer(binary, 8, threads)

        def plan(c: int) -> list[str]:
            ours = "ours8" if c > 4 else "ours4"
            return [k for k in ("np4", ours, "np8", "ours1") if k in targets]

        # The smoke run leaves out llama-server's JSON schema and streams: its grammar lets the
        # model write whitespace (~340 tokens an answer), the slowest part of a smoke run.
        structured = [k for k in ("np4", "ours4") if k in targets and not (smoke and k == "np4")]
        for name, target in targets.items():  # warm-up: prompts, grammar compile, first step
            batch(target, 1, 8)
            if name in structured:
                batch(target, 1, 8, schema=True)
        plain = {(k, c): [] for c in clients for k in plan(c)}
        schema = {k: [] for k in structured}
        ttft = {(k, n): [] for k in structured for n in (1, 4)}
        for rep in range(reps):
            flip = (lambda xs: xs) if rep % 2 == 0 else (lambda xs: xs[::-1])  # noqa: E731
            for c in clients:
                for k in flip(plan(c)):
                    plain[(k, c)].append(batch(targets[k], c, tokens))
            for k in flip(structured):
                schema[k].append(batch(targets[k], 4, tokens, schema=True))
            for n in (1, 4):
                for k in flip(structured):
                    ttft[(k, n)].append(batch(targets[k], n, tokens, stream=True))
            print(f"[bench] batching: repetition {rep + 1}/{reps} done", flush=True)
    finally:
        for target in targets.values():
            target.stop()
    out = {
        "tokens": tokens,
        "reps": reps,
        "threads": threads,
        "llama_server": None if peer_skipped else str(binary),
        "llama_server_skipped": peer_skipped,
        "plain": {f"{k}@{c}": _cell(v) for (k, c), v in plain.items()},
        "structured": {k: _cell(v) for k, v in schema.items()},
        "ttft": {f"{k}@{n}": _ttft(v) for (k, n), v in ttft.items()},
    }
    return {**out, **ratios(out, results.get("engine"))}


def ratios(out: dict, engine: dict | None) -> dict:
    p, s, t = out["plain"], out["structured"], out["ttft"]
    rate = lambda cells, key: cells.get(key, {}).get("tokens_per_s")  # noqa: E731

    def div(a, b):
        return a / b if a is not None and b else None

    return {
        "ratio_4_vs_np4": div(rate(p, "ours4@4"), rate(p, "np4@4")),
        "ratio_8_vs_np8": div(rate(p, "ours8@8"), rate(p, "np8@8")),
        "one_stream_vs_direct": (engine or {}).get("ratio"),
        "structured_vs_unconstrained": div(rate(s, "ours4"), rate(p, "ours4@4")),
        "structured_vs_np4": div(rate(s, "ours4"), rate(s, "np4")),
        "ttft_4_vs_1": div(t.get("ours4@4", {}).get("p50_ms"), t.get("ours4@1", {}).get("p50_ms")),
        "peer_ttft_4_vs_1": div(t.get("np4@4", {}).get("p50_ms"), t.get("np4@1", {}).get("p50_ms")),
    }
