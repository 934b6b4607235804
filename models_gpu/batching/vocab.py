"""Token text and end-of-generation tests, read from the shared model's vocabulary."""


class Vocab:
    def __init__(self, llama):
        import llama_cpp

        self._model, self._is_eog = llama._model, llama_cpp.llama_vocab_is_eog
        self._vocab = llama._model.vocab
        self._pieces: dict[int, bytes] = {}

    def piece(self, token: int) -> bytes:
        """A token's bytes, as the single-sequence engine detokenizes them (one at a time)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._model.detokenize([token], special=False)
        return piece

    def is_eog(self, token: int) -> bool:
        return bool(self._is_eog(self._vocab, token))
