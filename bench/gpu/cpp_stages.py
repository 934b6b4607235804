"""llama.cpp's own programs: the C++ ceiling (llama-batched-bench) and llama-server (CPU
sampling, or --backend-sampling)."""

import json
import os
import subprocess
import time

import requests
from rows import PER_SLOT, PROMPTS, SAMPLED, emit, fan_out, rate_row

PORT = 18080


def batched_bench(a, model: str) -> None:
    started = time.time()
    out = subprocess.run(_batched_cmd(a, model), capture_output=True, text=True, timeout=300)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            emit(
                {
                    "what": "cpp_batched_bench",
                    "model": a.tag,
                    "clients": d.get("pl"),
                    "tok_s": d.get("speed_tg"),
                    "pp_tok_s": d.get("speed_pp"),
                }
            )
    if out.returncode:
        emit({"what": "cpp_batched_bench", "error": out.stderr[-800:]})
    print(f"# batched-bench {time.time() - started:.1f}s", flush=True)


def _batched_cmd(a, model: str) -> list[str]:
    ctx = str(max(a.levels) * PER_SLOT)
    levels = ",".join(map(str, a.levels))
    return [
        *(f"{a.bin}/llama-batched-bench", "-m", model, "-c", ctx, "-b", "2048", "-ub", "512"),
        *("-npp", "32", "-ntg", str(a.tokens), "-npl", levels, "-ngl", str(a.ngl)),
        *("--output-format", "jsonl", "-kvu"),
    ]


def server_bench(a, model: str, extra: tuple[str, ...] = (), name: str = "llama_server") -> None:
    proc = _start_server(a, model, extra, f"{a.out}/{name}-{a.tag}.log")
    try:
        if not _healthy(proc):
            why = "not up in 300 s" if proc.poll() is None else f"exited {proc.returncode}"
            emit({"what": name, "model": a.tag, "error": why})
            return
        _one(a, 0, 0, [0])  # warm-up
        for temp in a.temps:
            for c in a.levels:
                made, wall = fan_out(c, lambda i, t, m: _one(a, i, t, m), temp)
                emit(rate_row(name, a, c, temp, made, wall))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def _start_server(a, model: str, extra: tuple[str, ...], log: str) -> subprocess.Popen:
    slots = max(a.levels)
    cmd = [
        *(f"{a.bin}/llama-server", "-m", model, "--host", "127.0.0.1", "--port", str(PORT)),
        *("-c", str(slots * PER_SLOT), "-np", str(slots), "-kvu", "-ngl", str(a.ngl)),
        *("--no-webui", *a.server_args.split(), *extra),
    ]
    err = open(log, "w")  # noqa: SIM115 (the child holds it)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)


def _healthy(proc: subprocess.Popen) -> bool:
    """Wait for /health (loading the model), or for the server to exit."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{PORT}/health", timeout=1).ok:
                return True
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def _one(a, i: int, temp: float, made: list[int]) -> None:
    body = {
        "prompt": PROMPTS[i % 4],
        "n_predict": a.tokens,
        "ignore_eos": True,
        "cache_prompt": False,
        "seed": 1000 + i,
    }
    body.update({"temperature": 0} if temp == 0 else SAMPLED)
    r = requests.post(f"http://127.0.0.1:{PORT}/completion", json=body, timeout=300)
    r.raise_for_status()
    made[i] = r.json()["tokens_predicted"]
