"""Sampling one slot's next token in numpy from its logits row, with llama.cpp's semantics.

llama.cpp's own sampler chain copies the whole 262k-token vocabulary into a candidate list per
row, which cost ~10% of the batch's throughput here; numpy on the row's view does not. The chain
is llama-cpp-python's (what `Llama.generate` did for us before): penalties over the last 64
generated tokens, then greedy at temperature 0, else top-k -> top-p -> min-p -> temperature ->
a draw from the slot's own seeded generator (reproducible for a seeded task, whatever else runs
in the batch; not the same draws as llama.cpp's RNG). Slots the device can sample use the same
chain in llama.cpp (device.py); this path serves those that need the logits.
"""

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sop_llm.providers.types import SamplingParams

PENALTY_LAST_N = 64  # llama-cpp-python's last_n_tokens_size
# Candidates are the tokens within this many logits of the best one: anything below is e^30
# times less likely than the best token, so it can never survive top-p < 1 or min-p > 0.
CANDIDATE_SPAN = 30.0


@dataclass(frozen=True)
class SamplerSettings:
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05  # llama-cpp-python's default; SamplingParams may not carry it
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @classmethod
    def of(cls, params: SamplingParams) -> "SamplerSettings":
        return cls(
            temperature=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=getattr(params, "min_p", cls.min_p),
            repeat_penalty=params.repeat_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
        )

    @property
    def penalizes(self) -> bool:
        return (self.repeat_penalty, self.presence_penalty, self.frequency_penalty) != (1, 0, 0)


class Sampler:
    def __init__(
        self, settings: SamplerSettings, seed: int, bias: Mapping[int, float] | None = None
    ):
        self.settings = settings
        self.rng = np.random.default_rng(seed)
        self.history: deque[int] = deque(maxlen=PENALTY_LAST_N)
        # token id -> added to its logit (logit_bias; ids arrive as JSON keys: digits)
        self.bias = {int(k): float(v) for k, v in (bias or {}).items()}
        self._bias_ids = np.fromiter(self.bias, dtype=np.int64, count=len(self.bias))
        self._bias_values = np.fromiter(self.bias.values(), dtype=np.float32, count=len(self.bias))

    def accept(self, token: int) -> None:
        self.history.append(token)

    def penalize(self, row: np.ndarray) -> None:
        """The logit bias, then llama.cpp's penalties, in place (the device chain's order):
        repeat divides a positive logit (multiplies a negative one), frequency subtracts per
        occurrence, presence once."""
        if self.bias:
            row[self._bias_ids] += self._bias_values
        s = self.settings
        if not self.history or not s.penalizes:
            return
        ids, counts = np.unique(np.fromiter(self.history, dtype=np.int64), return_counts=True)
        logits = row[ids]
        logits = np.where(logits <= 0, logits * s.repeat_penalty, logits / s.repeat_penalty)
        row[ids] = logits - counts * s.frequency_penalty - s.presence_penalty

    def sample(self, row: np.ndarray) -> int:
        if self.settings.temperature <= 0:
            return int(row.argmax())
        ids, logits = self._top_k(row)
        ids, logits = self._top_p_min_p(ids, logits)
        probs = _softmax(logits / self.settings.temperature)
        return int(ids[min(np.searchsorted(np.cumsum(probs), self.rng.random()), len(ids) - 1)])

    def _top_k(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k best tokens, sorted best first (an argpartition over the whole row costs ~5 ms:
        a threshold first narrows it to the few near the top)."""
        s, best = self.settings, row.max()
        if s.top_k <= 0 and s.top_p >= 1 and s.min_p <= 0:
            ids = np.arange(len(row))  # nothing filters: the whole distribution counts
        else:
            ids = _near_top(row, best, s.top_k)
        if 0 < s.top_k < len(ids):
            ids = ids[np.argpartition(row[ids], -s.top_k)[-s.top_k :]]
        ids = ids[np.argsort(-row[ids], kind="stable")]
        return ids, row[ids].astype(np.float64)

    def _top_p_min_p(self, ids: np.ndarray, logits: np.ndarray):
        s = self.settings
        keep = len(ids)
        if s.top_p < 1:
            keep = min(keep, int(np.searchsorted(np.cumsum(_softmax(logits)), s.top_p)) + 1)
        if s.min_p > 0:
            keep = min(keep, max(1, int(np.sum(logits >= logits[0] + np.log(s.min_p)))))
        return ids[:keep], logits[:keep]


def _near_top(row: np.ndarray, best: float, k: int) -> np.ndarray:
    span = CANDIDATE_SPAN
    while True:
        ids = np.flatnonzero(row >= best - span)
        if len(ids) >= k or span > 1e6:
            return ids
        span *= 8


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def check_logit_bias(bias: Mapping, n_vocab: int, model: str) -> None:
    """A token id past the vocabulary is the caller's mistake: a 400 naming the field."""
    from sop_llm.providers.errors import ProviderError

    outside = sorted(int(k) for k in bias if not 0 <= int(k) < n_vocab)
    if outside:
        raise ProviderError(
            f"local ({model}): logit_bias: token id {outside[0]} is outside the model's "
            f"vocabulary (0 to {n_vocab - 1})",
            code="bad_request",
            provider="local",
            model=model,
        )


def bias_processor(bias: Mapping):
    """llama-cpp-python's logits processor form, for the single-sequence engine."""
    ids = np.fromiter((int(k) for k in bias), dtype=np.int64, count=len(bias))
    values = np.fromiter(bias.values(), dtype=np.float32, count=len(bias))

    def apply(_input_ids, scores):
        scores[ids] += values
        return scores

    return apply
