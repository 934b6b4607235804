"""llguidance's view of a loaded model's vocabulary, for structured output on both paths.

Building it walks the vocabulary (~1.3 s for Gemma 3's 262k tokens), so it is built once per
loaded model and kept on the shared model object, as the batch's vocab tables are: the single
path and every batch engine over the same weights ask here and get the same one.
"""

import threading

_building = threading.Lock()  # slot threads may ask at once: one builds, the others wait


def lltokenizer(llama):
    """The llguidance tokenizer of a loaded llama_cpp.Llama's model, built on first use."""
    model = llama._model
    tokenizer = getattr(model, "_sop_lltokenizer", None)
    if tokenizer is None:
        with _building:
            tokenizer = getattr(model, "_sop_lltokenizer", None)
            if tokenizer is None:
                tokenizer = model._sop_lltokenizer = _build(model.vocab)
    return tokenizer


def _build(vocab):
    import warnings

    from llguidance.llamacpp import lltokenizer_from_vocab

    with warnings.catch_warnings():  # it calls a deprecated llama.cpp getter per token
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(vocab)
