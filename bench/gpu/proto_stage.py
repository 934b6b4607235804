"""A reference decode loop over llama-cpp-python's C API with llama.cpp's backend sampling:
prefill every prompt, then one token per sequence per step, the sampler chains running inside
llama_decode (llama_set_sampler via llama_context_params.samplers). What the Python share of a
step can be at best; the engine's host path is `ours` at temperature 0.8, not a loop of ours."""

import ctypes
import time

from engine_stage import load
from rows import PER_SLOT, PROMPTS, emit

BATCH = 512


def proto_bench(a, model: str, flash: bool) -> None:
    import llama_cpp as L

    llama = load(a, model, flash)
    prompts = [llama.tokenize(p.encode(), add_bos=True) for p in PROMPTS]
    for temp in a.temps:
        ctx, chains, keep = _context(L, llama, max(a.levels), temp)
        batch = L.llama_batch_init(BATCH, 0, 1)
        for c in a.levels:
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
            row = _level(L, ctx, batch, chains, [prompts[s % 4] for s in range(c)], a.tokens)
            emit(
                {
                    "what": f"proto_backend_fa{int(flash)}",
                    "model": a.tag,
                    "clients": c,
                    "temp": temp,
                    **row,
                }
            )
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        for ch in chains:
            L.llama_sampler_free(ch)
        del keep
    llama.close()


def _context(L, llama, slots: int, temp: float):
    """A context of `slots` sequences, each with its own sampler chain attached."""
    params = L.llama_context_params.from_buffer_copy(llama.context_params)
    params.n_ctx, params.n_seq_max, params.kv_unified = slots * PER_SLOT, slots, True
    params.n_batch = params.n_ubatch = BATCH
    chains = [_chain(L, temp, seed=1000 + s) for s in range(slots)]
    cfg = (L.llama_sampler_seq_config * slots)()
    for s, ch in enumerate(chains):
        cfg[s].seq_id, cfg[s].sampler = s, ctypes.cast(ch, ctypes.c_void_p)
    params.samplers = ctypes.cast(cfg, ctypes.POINTER(L.llama_sampler_seq_config))
    params.n_samplers = slots
    return L.llama_init_from_model(llama._model.model, params), chains, cfg


def _chain(L, temp: float, seed: int):
    ch = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    if temp == 0:
        parts = [L.llama_sampler_init_greedy()]
    else:
        parts = [
            L.llama_sampler_init_top_k(40),
            L.llama_sampler_init_top_p(0.95, 1),
            L.llama_sampler_init_min_p(0.05, 1),
            L.llama_sampler_init_temp(temp),
            L.llama_sampler_init_dist(seed),
        ]
    for part in parts:
        L.llama_sampler_chain_add(ch, part)
    return ch


def _level(L, ctx, batch, chains, prompts: list[list[int]], tokens: int) -> dict:
    """C sequences (sequence s has prompts[s]) to `tokens` tokens each: rate and step costs."""
    started = time.perf_counter()
    last = _prefill(L, ctx, batch, chains, prompts)
    n_past = [len(p) for p in prompts]
    py_s = dec_s = 0.0
    for _ in range(tokens - 1):
        t0 = time.perf_counter()
        _fill(batch, [(last[s], n_past[s], s, True) for s in range(len(prompts))])
        t1 = time.perf_counter()
        assert L.llama_decode(ctx, batch) == 0
        L.llama_synchronize(ctx)
        t2 = time.perf_counter()
        last = [_sampled(L, ctx, i, chains[i]) for i in range(len(prompts))]
        n_past = [n + 1 for n in n_past]
        py_s, dec_s = py_s + (t1 - t0) + (time.perf_counter() - t2), dec_s + (t2 - t1)
    wall = time.perf_counter() - started
    steps = max(1, tokens - 1)
    return {
        "tok_s": round(len(prompts) * tokens / wall, 1),
        "wall_s": round(wall, 3),
        "python_ms_step": round(py_s * 1000 / steps, 3),
        "decode_ms_step": round(dec_s * 1000 / steps, 3),
    }


def _prefill(L, ctx, batch, chains, prompts: list[list[int]]) -> list[int]:
    """Every prompt, in chunks of the batch; each sequence's first token."""
    rows = [
        (tok, pos, s, pos == len(p) - 1) for s, p in enumerate(prompts) for pos, tok in enumerate(p)
    ]
    first = [0] * len(prompts)
    for k in range(0, len(rows), BATCH):
        chunk = rows[k : k + BATCH]
        _fill(batch, chunk)
        assert L.llama_decode(ctx, batch) == 0
        for i, (_, _, s, wants) in enumerate(chunk):
            if wants:
                first[s] = _sampled(L, ctx, i, chains[s])
    return first


def _fill(batch, rows: list[tuple[int, int, int, bool]]) -> None:
    for i, (tok, pos, seq, logits) in enumerate(rows):
        batch.token[i], batch.pos[i], batch.logits[i] = tok, pos, logits
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
    batch.n_tokens = len(rows)


def _sampled(L, ctx, i: int, chain) -> int:
    tok = L.llama_get_sampled_token_ith(ctx, i)
    if tok < 0:
        raise RuntimeError("backend sampler returned no token")
    L.llama_sampler_accept(chain, tok)
    return tok
