"""Log-probabilities of the answer's tokens, in OpenAI's shape.

They come from the model's own distribution over the next token: the raw logits, before the
repetition penalties, temperature, top-k/top-p/min-p and before any grammar mask. So under a
grammar a token's logprob says how likely the model found it unconstrained (a forced token may
show a low logprob), and `top_logprobs` may list tokens the grammar did not allow. This is what
vLLM reports by default (its "raw" logprobs) and what makes logprobs comparable across requests
with different sampling settings.
"""

from collections.abc import Callable

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    row = logits.astype(np.float32, copy=True)
    finite = row[np.isfinite(row)]
    top = finite.max() if finite.size else 0.0
    row -= top + np.log(np.sum(np.exp(finite - top)))
    return row


class Logprobs:
    """Entries for one sequence: `seen` the distribution of the next token, then `chose` the
    token sampled from it."""

    def __init__(self, top: int, piece: Callable[[int], bytes]):
        self.top, self.piece = top, piece
        self.entries: list[dict] = []
        self._row: np.ndarray | None = None

    def seen(self, logits: np.ndarray) -> None:
        self._row = log_softmax(logits)

    def chose(self, token: int) -> None:
        if self._row is None:
            return
        row, self._row = self._row, None
        entry = self._entry(token, float(row[token]))
        entry["top_logprobs"] = [self._entry(t, float(row[t])) for t in self._best(row)]
        self.entries.append(entry)

    def _best(self, row: np.ndarray) -> list[int]:
        if self.top <= 0:
            return []
        ids = np.argpartition(row, -self.top)[-self.top :]
        return [int(t) for t in ids[np.argsort(-row[ids], kind="stable")]]

    def _entry(self, token: int, logprob: float) -> dict:
        raw = self.piece(token)
        return {
            "token": raw.decode("utf-8", errors="replace"),
            "logprob": max(logprob, -9999.0),  # JSON has no -inf
            "bytes": list(raw),
        }

    def within(self, text: str) -> list[dict]:
        """The entries of the tokens that made `text` (a stop string cut what followed)."""
        budget, kept = len(text.encode()), []
        for entry in self.entries:
            if budget <= 0:
                break
            kept.append(entry)
            budget -= len(entry["bytes"])
        return kept


class Recorder:
    """A llama-cpp-python logits processor placed first in the list, so it sees the raw
    logits; it changes nothing."""

    def __init__(self, logprobs: Logprobs):
        self.logprobs = logprobs

    def __call__(self, input_ids, scores):
        self.logprobs.seen(scores)
        return scores
