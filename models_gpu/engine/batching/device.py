"""Sampling on the device: a llama.cpp sampler chain per sequence, run inside llama_decode.

llama.cpp's backend sampling builds each attached chain into the decode graph, so the loop reads
one sampled token per sequence instead of a 262k-entry logits row. The chain is the host path's
(sampling.py): logit bias, penalties over the last 64 tokens, then greedy at temperature 0, else
top-k -> top-p -> min-p -> temperature -> a draw. The draw is llama.cpp's dist sampler: its own
std::mt19937 seeded with the task's seed, one uniform number per step of this sequence, so a
seeded task's text depends on nothing else in the batch but the kernels' numerics.

A chain is attached to the slot's sequence id at admission and detached and freed when the
sequence leaves its slot; `live` counts the chains made and not yet freed.
"""

import ctypes
from collections.abc import Mapping

from .sampling import PENALTY_LAST_N, SamplerSettings


def on_device(seq) -> bool:
    """Whether the backend can sample this sequence: grammars (llguidance) and logprobs (the
    raw distribution) need the host logits."""
    return seq.matcher is None and seq.logprobs is None


class DeviceChains:
    """One sampler chain per busy slot, owned here; freed before the context is."""

    def __init__(self, api, ctx, n_vocab: int):
        self._api, self._ctx, self._n_vocab = api, ctx, n_vocab
        self._chains: dict[int, object] = {}  # slot index -> llama_sampler*
        self.made = self.freed = 0

    @property
    def live(self) -> int:
        return self.made - self.freed

    def attach(self, slot: int, settings: SamplerSettings, seed: int, bias: Mapping) -> bool:
        """Build and attach a chain; False when llama.cpp will not run it on the backend (the
        sequence then samples on the host)."""
        self.detach(slot)
        chain = self._build(settings, seed, bias)
        self.made += 1
        if not self._api.llama_set_sampler(self._ctx, slot, chain):
            self._free(chain)
            return False
        self._chains[slot] = chain
        return True

    def chain(self, slot: int):
        return self._chains.get(slot)

    def advance(self, chain, token: int) -> None:
        """The chain's state (penalty history, draws) moves on when its token is taken, not
        when it is read (llama-server does the same)."""
        self._api.llama_sampler_accept(chain, token)

    def detach(self, slot: int) -> None:
        chain = self._chains.pop(slot, None)
        if chain is not None:
            self._api.llama_set_sampler(self._ctx, slot, None)  # before the free: the graph uses it
            self._free(chain)

    def detach_all(self) -> None:
        for slot in list(self._chains):
            self.detach(slot)

    def _free(self, chain) -> None:
        self._api.llama_sampler_free(chain)  # the chain frees the samplers it holds
        self.freed += 1

    def _build(self, settings: SamplerSettings, seed: int, bias: Mapping):
        api = self._api
        chain = api.llama_sampler_chain_init(api.llama_sampler_chain_default_params())
        for sampler in self._parts(settings, seed, bias):
            api.llama_sampler_chain_add(chain, sampler)
        return chain

    def _parts(self, s: SamplerSettings, seed: int, bias: Mapping) -> list:
        api, parts = self._api, []
        if bias:
            parts.append(self._bias(bias))
        if s.penalizes:
            parts.append(
                api.llama_sampler_init_penalties(
                    self._n_vocab,
                    PENALTY_LAST_N,
                    s.repeat_penalty,
                    s.frequency_penalty,
                    s.presence_penalty,
                )
            )
        return parts + self._pick(s, seed)

    def _pick(self, s: SamplerSettings, seed: int) -> list:
        api = self._api
        if s.temperature <= 0:
            return [api.llama_sampler_init_greedy()]
        parts = [api.llama_sampler_init_top_k(s.top_k)] if s.top_k > 0 else []
        if s.top_p < 1:
            parts.append(api.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            parts.append(api.llama_sampler_init_min_p(s.min_p, 1))
        return parts + [
            api.llama_sampler_init_temp(s.temperature),
            api.llama_sampler_init_dist(seed),
        ]

    def _bias(self, bias: Mapping):
        api = self._api
        entries = (api.llama_logit_bias * len(bias))()
        for entry, (token, value) in zip(entries, sorted(bias.items()), strict=True):
            entry.token, entry.bias = token, value
        pointer = ctypes.cast(entries, ctypes.POINTER(api.llama_logit_bias))
        return api.llama_sampler_init_logit_bias(self._n_vocab, len(bias), pointer)
