"""llama.cpp's native GBNF engine, made safe to feed: every grammar is parsed by llama.cpp's own
parser in a short-lived child process before any long-lived process gets near it.

Why a child: llama.cpp's parser returns no sampler for a malformed grammar (`root ::= (`), and
llama-cpp-python then adds that null sampler to its chain and segfaults the process sampling;
other grammars make the parser loop (`"a"{2,1}`). In a child that costs a refusal, not a
worker. The verdict is remembered per grammar and vocabulary (memory, then Redis), so the GPU
worker finds the submit-time verdict and only ever builds a sampler from a parsed grammar.
"""

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path

from grammars.errors import GrammarError

CHECK_TIMEOUT_SECONDS = 20
CACHE_TTL_SECONDS = 30 * 86400
_ROOT = Path(__file__).resolve().parent.parent
# Bounded, because every distinct grammar a client sends lands here: the oldest go first
# (Redis still has them). Children are bounded too: each is a Python start plus a vocab load.
VERDICTS_KEPT = 512
CHILDREN_AT_ONCE = 2
_verdicts: OrderedDict[str, dict] = OrderedDict()
_verdicts_lock = threading.Lock()
_children = threading.BoundedSemaphore(CHILDREN_AT_ONCE)


def native_gbnf(kind: str, text: str, vocab_path: str | None = None) -> str:
    """The GBNF llama.cpp will run for a source (a JSON schema is converted first), parsed by
    llama.cpp against the model's vocabulary; GrammarError names what llama.cpp refused."""
    digest = _digest(kind, text, vocab_path)
    verdict = _recalled(digest) or _cached(digest)
    if verdict is None:
        verdict = _run_child(kind, text, vocab_path)
        if verdict.get("final", True):
            _remember(digest, verdict)
    _keep(digest, verdict)
    if "error" in verdict:
        raise GrammarError(f"llama.cpp refuses the grammar: {verdict['error']}")
    return verdict["gbnf"]


def _recalled(digest: str) -> dict | None:
    with _verdicts_lock:
        verdict = _verdicts.get(digest)
        if verdict is not None:
            _verdicts.move_to_end(digest)
        return verdict


def _keep(digest: str, verdict: dict) -> None:
    with _verdicts_lock:
        _verdicts[digest] = verdict
        _verdicts.move_to_end(digest)
        while len(_verdicts) > VERDICTS_KEPT:
            _verdicts.popitem(last=False)


def _digest(kind: str, text: str, vocab_path: str | None) -> str:
    stamp = None
    if vocab_path:
        stat = os.stat(vocab_path)
        stamp = [vocab_path, stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(json.dumps([kind, text, stamp]).encode()).hexdigest()


def _run_child(kind: str, text: str, vocab_path: str | None) -> dict:
    if not _children.acquire(timeout=CHECK_TIMEOUT_SECONDS):
        return {"error": "the grammar checker is busy; try again", "final": False}
    try:
        return _child_verdict(kind, text, vocab_path)
    finally:
        _children.release()


def _child_verdict(kind: str, text: str, vocab_path: str | None) -> dict:
    request = json.dumps({"kind": kind, "text": text, "vocab": vocab_path})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "grammars.native_child"],
            input=request,
            capture_output=True,
            text=True,
            cwd=_ROOT,
            timeout=CHECK_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:  # not remembered: a busy machine may be the reason
        message = f"its parser did not finish within {CHECK_TIMEOUT_SECONDS} s"
        return {"error": message, "final": False}
    if done.returncode < 0:
        return {"error": f"its parser crashed on it (signal {-done.returncode})"}
    if done.returncode != 0:  # e.g. an unreadable model file: not the grammar's fault
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the check failed: {last[:300]}", "final": False}
    return json.loads(done.stdout)


def _cached(digest: str) -> dict | None:
    from sop_llm.core import keys
    from sop_llm.core.redis import get_redis

    raw = get_redis().get(keys.grammar_check(digest))
    return json.loads(raw) if raw else None


def _remember(digest: str, verdict: dict) -> None:
    from sop_llm.core import keys
    from sop_llm.core.redis import get_redis

    get_redis().set(keys.grammar_check(digest), json.dumps(verdict), ex=CACHE_TTL_SECONDS)
