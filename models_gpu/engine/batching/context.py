"""Our own llama.cpp context on an already loaded model, for many sequences at once.

The high-level `Llama` builds its context with n_seq_max = 1; a batch needs n_seq_max = slots, so
this context shares the loaded weights (`llama._model.model`) and owns its KV cache and batch.

The batch is filled through numpy views over the llama_batch arrays: one assignment per array
per step instead of five ctypes writes per token. Every entry's seq_id pointer is aimed once at
its cell of one int32 array of ours (llama_batch_init's own per-entry arrays are put back
before the free), so sequence ids are one array too.
"""

import ctypes
import functools

import numpy as np

from sop_llm.providers.errors import ProviderError

from .device import DeviceChains
from .plan import Plan


class BatchContext:
    def __init__(self, llama, *, slots: int, n_ctx: int, n_batch: int, threads: int, **kw):
        import llama_cpp

        self._api = llama_cpp
        params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx, params.n_seq_max, params.kv_unified = n_ctx, slots, kw["unified"]
        params.n_batch = params.n_ubatch = n_batch
        params.n_threads = params.n_threads_batch = threads
        params.embeddings = False
        params.n_outputs_max_per_seq = 1  # one token per sequence per step: sized for that
        self._ctx = llama_cpp.llama_init_from_model(llama._model.model, params)
        if not self._ctx:
            raise ProviderError("local: llama.cpp made no batch context", provider="local")
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._views(n_batch)
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self.unified, self.n_batch, self.slots = kw["unified"], n_batch, slots
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama._model.vocab)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        seq_ctx = llama_cpp.llama_n_ctx_seq(self._ctx)
        self.n_ctx_slot = self.n_ctx // slots if self.unified else seq_ctx
        self.chains = DeviceChains(llama_cpp, self._ctx, self.n_vocab)

    def _views(self, n: int) -> None:
        batch, view = self._batch, np.ctypeslib.as_array
        self._token, self._pos = view(batch.token, (n,)), view(batch.pos, (n,))
        self._want = view(batch.logits, (n,))
        view(batch.n_seq_id, (n,))[:] = 1
        self._seq = np.zeros(n, dtype=np.int32)
        pointers = ctypes.cast(batch.seq_id, ctypes.POINTER(ctypes.c_uint64))
        self._seq_ptrs = view(pointers, (n,))
        self._own_seq_ids = self._seq_ptrs.copy()
        self._seq_ptrs[:] = self._seq.ctypes.data + np.arange(n, dtype=np.uint64) * 4

    def decode(self, plan: Plan) -> int:
        """One llama_decode over the plan's rows; 0 on success, llama.cpp's code otherwise."""
        n = plan.n_rows
        self._token[:n], self._pos[:n] = plan.tokens, plan.pos
        self._seq[:n], self._want[:n] = plan.seq_ids, plan.want
        self._batch.n_tokens = n
        code = self._api.llama_decode(self._ctx, self._batch)
        # The graph may still run after llama_decode returns: wait here, so that the step's
        # compute counts as decode time, not as the first read of a sampled token.
        self._api.llama_synchronize(self._ctx)
        return code

    def sampled_reader(self):
        """f(index): the token the device sampled for batch entry `index` (negative: none)."""
        return functools.partial(self._api.llama_get_sampled_token_ith, self._ctx)

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
            self.chains.detach_all()
            self._seq_ptrs[:] = self._own_seq_ids  # llama_batch_free frees its own arrays
            self._api.llama_batch_free(self._batch)
            self._api.llama_free(self._ctx)
            self._ctx = None
