"""Token text and end-of-generation flags, read once per loaded model into tables.

The decode loop looks up every sampled token: a list index costs a fraction of a microsecond
where a llama.cpp call per token costs a few. Building the tables walks the vocabulary once
(~0.3 s for Gemma 3's 262k tokens) and they are kept on the shared model object, so every batch
engine over the same weights reuses them.
"""

import ctypes

PIECE_BUFFER = 256  # bytes; a longer piece is read again with a buffer of its size


class Vocab:
    def __init__(self, llama):
        model = llama._model
        tables = getattr(model, "_sop_vocab_tables", None)
        if tables is None:
            tables = model._sop_vocab_tables = _tables(model.vocab)
        self.pieces, self.eog = tables

    def piece(self, token: int) -> bytes:
        """A token's bytes as generated text shows them (special tokens as nothing)."""
        return self.pieces[token]

    def is_eog(self, token: int) -> bool:
        return token in self.eog


def _tables(vocab) -> tuple[list[bytes], frozenset[int]]:
    import llama_cpp

    n = llama_cpp.llama_vocab_n_tokens(vocab)
    buffer = ctypes.create_string_buffer(PIECE_BUFFER)
    pieces = [_piece(llama_cpp, vocab, token, buffer) for token in range(n)]
    eog = frozenset(t for t in range(n) if llama_cpp.llama_vocab_is_eog(vocab, t))
    return pieces, eog


def _piece(api, vocab, token: int, buffer) -> bytes:
    n = api.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
    if n >= 0:
        return buffer.raw[:n]
    bigger = ctypes.create_string_buffer(-n)
    return bigger.raw[: api.llama_token_to_piece(vocab, token, bigger, -n, 0, False)]
