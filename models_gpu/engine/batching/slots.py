"""Slots and where a new sequence goes: llama-server's cache_prompt, per slot.

A slot keeps the tokens whose KV its sequence holds after a task ends. A new prompt goes to the
free slot sharing the longest prefix with it (the lowest-numbered on a tie: with per-slot KV
streams llama.cpp splits a step at every gap in the run of sequence ids); if another slot, busy
or not, holds a longer common prefix, that prefix is copied over.
"""

from dataclasses import dataclass, field

MIN_COPY_GAIN = 16  # copying a KV stream costs about as much as computing a few tokens


@dataclass
class Slot:
    index: int
    cached: list[int] = field(default_factory=list)  # tokens at positions 0.. in its KV
    seq: object | None = None

    @property
    def free(self) -> bool:
        return self.seq is None


@dataclass(frozen=True)
class Placement:
    slot: Slot
    reuse: int  # prompt tokens whose KV is already there (or copied)
    source: Slot | None = None  # copy the prefix from this slot first


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def place(slots: list[Slot], prompt: list[int]) -> Placement | None:
    """The free slot for `prompt` and how much of it is cached; None when every slot is busy.
    At least the prompt's last token is always computed: its logits give the first token."""
    free = [s for s in slots if s.free]
    if not free:
        return None
    limit = len(prompt) - 1
    shared = {s.index: min(common_prefix(s.cached, prompt), limit) for s in slots}
    target = max(free, key=lambda s: (shared[s.index], -s.index))
    donor = max(slots, key=lambda s: (shared[s.index], -s.index))
    if shared[donor.index] >= shared[target.index] + MIN_COPY_GAIN:
        return Placement(target, shared[donor.index], donor)
    return Placement(target, shared[target.index])
