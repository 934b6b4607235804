"""A synthetic local engine, for benchmarks and tests only (`EngineConfig.local_engine`
"synthetic", from LOCAL_ENGINE=synthetic).

It stands where the BatchEngine stands (LlamaEngine.batch) and runs the same `Sequence`s, so
everything around it is the real path: the GPU worker's slot threads, stop strings, max_tokens,
cancellation, TokenStream, Redis pub/sub, the web relay and SSE. Its decode step is a sleep of
`synthetic_step_ms` (the GIL released, as in llama_decode) that yields one token per live slot,
so 32 slots x 10 ms drive the service at a GPU's 3,200 tok/s on a machine with no GPU. The text
is a canned passage, the same for every request (`synthetic_text`), so a reader can check a
stream is complete and in order. Structured output and logprobs are refused: it has no logits.
"""

import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, GenerateResult

from .batching.sequence import POLL_SECONDS, Sequence, local_error

PASSAGE = (
    "The river ran wide and slow past the old mill, where the miller's daughter counted sacks "
    "of grain each morning before the carts arrived from the hill farms. In winter the wheel "
    "froze, and the village came to the mill to skate, to trade, and to hear the news that the "
    "carters carried down from the passes: a bridge washed out, a new road planned, a wedding "
    "in the valley town, prices of wool and salt and iron, and stories of travellers lost in "
    "the snow who walked out in spring with tales nobody quite believed."
)
PIECES = tuple(f" {word}".encode() for word in PASSAGE.split())


def synthetic_text(n_tokens: int) -> str:
    """What the engine answers with `n_tokens` tokens (and no stop string met)."""
    return b"".join(PIECES[i % len(PIECES)] for i in range(n_tokens)).decode()


def _token_id(k: int) -> int:
    # Negative ids: never one of the model's stop tokens, never an end of generation.
    return -1 - k % len(PIECES)


@dataclass(frozen=True)
class SyntheticContext:
    slots: int
    n_ctx: int

    @property
    def n_ctx_slot(self) -> int:
        return self.n_ctx // self.slots


class SyntheticEngine:
    """BatchEngine's interface (generate, generate_n, stats, close) over a fixed-time step."""

    def __init__(self, *, slots: int, n_ctx: int, step_ms: float, model_name: str = "local"):
        self.context = SyntheticContext(slots, n_ctx)
        self.step_s, self.model = step_ms / 1000, model_name
        self.live: list[Sequence | None] = [None] * slots
        self.waiting: deque[Sequence] = deque()
        self.cond = threading.Condition()
        self.running, self._tickets = True, itertools.count()
        self.steps, self.tokens, self.python_s = 0, 0, 0.0
        self.thread = threading.Thread(target=self._run, name="synthetic-decode", daemon=True)
        self.thread.start()

    @property
    def n_ctx_per_slot(self) -> int:
        return self.context.n_ctx_slot

    def generate(self, request: GenerateRequest, **kw) -> GenerateResult:
        """As BatchEngine.generate: blocks the calling thread, safe from many threads."""
        seq = self._sequence(request, kw)
        self._submit(seq)
        return seq.wait(self.wake)

    def generate_n(self, request: GenerateRequest, n: int, **kw) -> list[GenerateResult]:
        """n answers (the same canned text each); only the first streams."""
        quiet = replace(request, on_token=None)
        sequences = [self._sequence(request if i == 0 else quiet, kw) for i in range(n)]
        for seq in sequences:
            self._submit(seq)
        try:
            return [seq.wait(self.wake) for seq in sequences]
        finally:
            for seq in sequences:
                seq.cancel_requested = seq.cancel_requested or not seq.done.is_set()
            self.wake()

    def _sequence(self, request: GenerateRequest, kw: dict) -> Sequence:
        model = kw["model_name"]
        if kw.get("constraint") or request.params.logprobs:
            what = "structured output" if kw.get("constraint") else "logprobs"
            raise local_error(model, "bad_request", f"the synthetic engine has no {what}")
        self._check_fits(len(kw["prompt_tokens"]), request.params.max_tokens, model)
        return Sequence(
            request,
            list(kw["prompt_tokens"]),
            list(kw.get("stops", ())),
            model=model,
            seed=random.randrange(2**31) if request.params.seed is None else request.params.seed,
            matcher=None,
            stop_ids=kw.get("stop_token_ids", frozenset()),
            ignore_eos=True,
        )

    def _check_fits(self, n_prompt: int, max_tokens: int, model: str) -> None:
        if n_prompt == 0:
            raise ProviderError("local: the prompt is empty", code="bad_request", provider="local")
        if n_prompt + max_tokens > self.context.n_ctx_slot:
            room = self.context.n_ctx_slot
            message = f"the prompt ({n_prompt}) + max_tokens ({max_tokens}) > {room}"
            raise local_error(model, "context_length", message)

    def _submit(self, seq: Sequence) -> None:
        with self.cond:
            if not self.running:
                raise local_error(self.model, "engine_closed", "the batch engine is closed")
            self.waiting.append(seq)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()

    # --- the decode thread ----------------------------------------------------------
    def _run(self) -> None:
        try:
            while self._next_round():
                time.sleep(self.step_s)  # the "decode": the GIL is free meanwhile
                self._step()
        finally:
            closed = local_error(self.model, "engine_closed", "the batch engine was closed")
            for seq in [s for s in self.live if s] + list(self.waiting):
                seq.fail(closed)

    def _next_round(self) -> bool:
        with self.cond:
            while self.running:
                self._admit()
                if any(self.live):
                    return True
                self.cond.wait(timeout=POLL_SECONDS)
            return False

    def _admit(self) -> None:
        for seq in [s for s in self.waiting if s.interruption()]:
            self.waiting.remove(seq)
            seq.fail(seq.interruption())
        for index, seq in enumerate(self.live):
            if seq is None and self.waiting:
                self.live[index] = seq = self.waiting.popleft()
                seq.admitted(index, 0, next(self._tickets))
                seq.prefilled.set()

    def _step(self) -> None:
        started = time.thread_time()
        n = sum(seq is not None for seq in self.live)
        for index, seq in enumerate(self.live):
            if seq is not None and self._advance(seq, n):
                self.live[index] = None
        self.steps += 1
        self.python_s += time.thread_time() - started

    def _advance(self, seq: Sequence, n: int) -> bool:
        """One token for `seq`; True when it has finished (or was interrupted)."""
        error = seq.interruption()
        if error is not None:
            return seq.fail(error)
        seq.note_step(n)
        k = seq.count
        self.tokens += 1
        return seq.accept(_token_id(k), PIECES[k % len(PIECES)], False)

    def busy(self) -> int:
        return sum(seq is not None for seq in self.live)

    def stats(self) -> dict:
        steps = max(1, self.steps)
        return {
            "engine": "synthetic",
            "slots": self.context.slots,
            "busy": self.busy(),
            "waiting": len(self.waiting),
            "steps": self.steps,
            "tokens": self.tokens,
            "step_ms": self.step_s * 1000,
            "python_ms_per_step": round(self.python_s * 1000 / steps, 3),
        }

    def close(self) -> None:
        """Stop the thread; live and waiting sequences fail with `engine_closed`."""
        with self.cond:
            if not self.running:
                return
            self.running = False
            self.cond.notify()
        self.thread.join()
