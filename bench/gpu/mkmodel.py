"""Random-weight Gemma 3 GGUF files with the real Gemma 3 tokenizer, for speed measurements.

Weights are Q8_0 blocks tiled from a small random pool (speed does not depend on values);
norms are ones. Shapes follow Gemma 3 270M and Gemma 3 4B.

    python mkmodel.py OUT.gguf {270m|1b|4b}
"""

import json
import lzma
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter

SHAPES = {
    # n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, sliding_window
    "270m": (640, 18, 4, 1, 256, 2048, 512),
    "1b": (1152, 26, 4, 1, 256, 6912, 512),
    "4b": (2560, 34, 8, 4, 256, 10240, 1024),
}
VOCAB = 262144
BLOCK = 34  # Q8_0: f16 scale + 32 int8


def q8_pool(rng) -> np.ndarray:
    blocks = 4099  # prime: tiling never lines rows up with the pool
    scale = np.full((blocks, 1), 0.02 / 64, dtype=np.float16).view(np.uint8)
    q = rng.integers(-127, 128, size=(blocks, 32), dtype=np.int8).view(np.uint8)
    return np.concatenate([scale, q], axis=1).reshape(-1)


def q8_tensor(pool: np.ndarray, rows: int, cols: int) -> np.ndarray:
    assert cols % 32 == 0
    return np.resize(pool, rows * (cols // 32) * BLOCK).reshape(rows, (cols // 32) * BLOCK)


def main(out: str, size: str) -> None:
    n_embd, n_layer, n_head, n_kv, hd, n_ff, swa = SHAPES[size]
    with lzma.open(Path(__file__).with_name("tok.json.xz"), "rt") as fh:
        tok = json.load(fh)
    rng = np.random.default_rng(0)
    pool = q8_pool(rng)
    w = GGUFWriter(out, "gemma3")
    w.add_name(f"random gemma3 {size}")
    w.add_context_length(32768)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6)
    w.add_sliding_window(swa)
    w.add_file_type(7)  # MOSTLY_Q8_0
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tok["tokens"])
    w.add_token_scores(tok["scores"])
    w.add_token_types(tok["types"])
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)

    ones = lambda n: np.ones(n, dtype=np.float32)  # noqa: E731
    w.add_tensor("token_embd.weight", q8_tensor(pool, VOCAB, n_embd), raw_dtype=Q.Q8_0)
    w.add_tensor("output_norm.weight", ones(n_embd))
    for i in range(n_layer):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", ones(n_embd))
        w.add_tensor(b + "attn_q.weight", q8_tensor(pool, n_head * hd, n_embd), raw_dtype=Q.Q8_0)
        w.add_tensor(b + "attn_k.weight", q8_tensor(pool, n_kv * hd, n_embd), raw_dtype=Q.Q8_0)
        w.add_tensor(b + "attn_v.weight", q8_tensor(pool, n_kv * hd, n_embd), raw_dtype=Q.Q8_0)
        w.add_tensor(b + "attn_q_norm.weight", ones(hd))
        w.add_tensor(b + "attn_k_norm.weight", ones(hd))
        w.add_tensor(
            b + "attn_output.weight", q8_tensor(pool, n_embd, n_head * hd), raw_dtype=Q.Q8_0
        )
        w.add_tensor(b + "post_attention_norm.weight", ones(n_embd))
        w.add_tensor(b + "ffn_norm.weight", ones(n_embd))
        w.add_tensor(b + "ffn_gate.weight", q8_tensor(pool, n_ff, n_embd), raw_dtype=Q.Q8_0)
        w.add_tensor(b + "ffn_up.weight", q8_tensor(pool, n_ff, n_embd), raw_dtype=Q.Q8_0)
        w.add_tensor(b + "ffn_down.weight", q8_tensor(pool, n_embd, n_ff), raw_dtype=Q.Q8_0)
        w.add_tensor(b + "post_ffw_norm.weight", ones(n_embd))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
