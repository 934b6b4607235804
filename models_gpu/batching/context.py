"""Our own llama.cpp context on an already loaded model, for many sequences at once.

The high-level `Llama` builds its context with n_seq_max = 1; a batch needs n_seq_max = slots, so
this context shares the loaded weights (`llama._model.model`) and owns its KV cache and batch.
"""

import ctypes
from dataclasses import dataclass

import numpy as np

from sop_llm.providers.errors import ProviderError


@dataclass(frozen=True)
class Row:
    """One entry of a llama_batch: a token of a sequence at a position."""

    token: int
    pos: int
    seq: int
    logits: bool


class BatchContext:
    def __init__(self, llama, *, slots: int, n_ctx: int, n_batch: int, threads: int, unified: bool):
        import llama_cpp

        self._api = llama_cpp
        params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx, slots, unified
        params.n_batch = params.n_ubatch = n_batch
        params.n_threads = params.n_threads_batch = threads
        params.embeddings = False
        self._ctx = llama_cpp.llama_init_from_model(llama._model.model, params)
        if not self._ctx:
            raise ProviderError("local: llama.cpp made no batch context", provider="local")
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self.unified, self.n_batch, self.slots = unified, n_batch, slots
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama._model.vocab)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        seq_ctx = llama_cpp.llama_n_ctx_seq(self._ctx)
        self.n_ctx_slot = self.n_ctx // slots if unified else seq_ctx

    def decode(self, rows: list[Row]) -> int:
        """One llama_decode over every row; 0 on success, llama.cpp's code otherwise."""
        batch = self._batch
        for i, row in enumerate(rows):
            batch.token[i], batch.pos[i], batch.logits[i] = row.token, row.pos, row.logits
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = row.seq
        batch.n_tokens = len(rows)
        return self._api.llama_decode(self._ctx, batch)

    def logits(self, index: int) -> np.ndarray:
        """The logits row of batch entry `index` (a view into llama.cpp's buffer, valid until
        the next decode; sampling may scribble on it)."""
        pointer = self._api.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)
        )

    def keep_prefix(self, seq: int, n: int) -> bool:
        """Drop the sequence's cells from position n on; False if the prefix is not all there
        (a sliding-window cache that pruned it), and then the sequence is emptied."""
        api = self._api
        trimmed = n > 0 and api.llama_memory_seq_rm(self._mem, seq, n, -1)
        if trimmed and api.llama_memory_seq_pos_min(self._mem, seq) <= 0:
            return True
        api.llama_memory_seq_rm(self._mem, seq, -1, -1)
        return n == 0

    def copy_prefix(self, src: int, dst: int, n: int) -> bool:
        """Give `dst` the first n positions of `src`. Per-slot streams copy a whole stream
        (llama.cpp refuses a partial cross-stream copy), then trim; a unified cache shares cells."""
        self._api.llama_memory_seq_rm(self._mem, dst, -1, -1)
        if self.unified:
            self._api.llama_memory_seq_cp(self._mem, src, dst, 0, n)
            return True
        self._api.llama_memory_seq_cp(self._mem, src, dst, -1, -1)
        return self.keep_prefix(dst, n)

    def clear(self, seq: int) -> None:
        self._api.llama_memory_seq_rm(self._mem, seq, -1, -1)

    def close(self) -> None:
        # Batch and context go before the model they were made from (the model frees last).
        if self._ctx is not None:
            self._api.llama_batch_free(self._batch)
            self._api.llama_free(self._ctx)
            self._ctx = None
