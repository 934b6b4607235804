"""The decode loop: one thread; each step is one llama_decode over every live sequence, then
every sequence takes its next token: sampled inside the decode by its own llama.cpp chain (the
device path, device.py), or, for those that need the logits (a grammar, logprobs), sampled in
numpy from its logits row (the host path, sampling.py). Both kinds share the step.

Between steps, waiting sequences are admitted into free slots (FIFO), reusing KV prefixes.
"""

import itertools
import threading
import time
from collections import deque

from .device import on_device
from .plan import Plan, plan_step
from .sequence import POLL_SECONDS, Sequence, local_error
from .slots import Slot, place


class DecodeLoop:
    def __init__(self, context, vocab, masks, model: str, *, device_sampling: bool = True):
        self.ctx, self.vocab, self.masks, self.model = context, vocab, masks, model
        self.device_sampling = device_sampling
        self.tokens_on_device = self.tokens_on_host = 0
        self.slots = [Slot(i) for i in range(context.slots)]
        self.waiting: deque[Sequence] = deque()
        self.cond = threading.Condition()
        self.running = True
        self._tickets = itertools.count()
        self.steps, self.python_s, self.decode_s, self._decode_cpu = 0, 0.0, 0.0, 0.0
        self.thread = threading.Thread(target=self._run, name="batch-decode", daemon=True)
        self.thread.start()

    def submit(self, seq: Sequence) -> None:
        with self.cond:
            if not self.running:
                raise local_error(self.model, "engine_closed", "the batch engine is closed")
            self.waiting.append(seq)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.running = False
            self.cond.notify()
        self.thread.join()

    def busy(self) -> int:
        return sum(not s.free for s in self.slots)

    # --- the thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while self._next_round():
                self._step()
        finally:
            closed = local_error(self.model, "engine_closed", "the batch engine was closed")
            for seq in [s.seq for s in self.slots if s.seq] + list(self.waiting):
                seq.fail(closed)

    def _next_round(self) -> bool:
        """Admit waiting sequences into free slots; sleep while nothing is live."""
        with self.cond:
            while self.running:
                self._drop_interrupted_waiting()
                self._admit()
                if self.busy():
                    return True
                self.cond.wait(timeout=POLL_SECONDS)
            return False

    def _drop_interrupted_waiting(self) -> None:
        for seq in [s for s in self.waiting if s.interruption()]:
            self.waiting.remove(seq)
            seq.fail(seq.interruption())

    def _admit(self) -> None:
        while self.waiting:
            placement = place(self.slots, self.waiting[0].prompt)
            if placement is None:
                return
            seq, slot = self.waiting.popleft(), placement.slot
            reuse = placement.reuse
            if placement.source is not None:
                kept = self.ctx.copy_prefix(placement.source.index, slot.index, reuse)
            else:
                kept = self.ctx.keep_prefix(slot.index, reuse)
            reuse = reuse if kept else 0
            slot.cached, slot.seq = seq.prompt[:reuse], seq
            seq.admitted(slot.index, reuse, next(self._tickets))
            self._attach(seq)

    def _attach(self, seq: Sequence) -> None:
        """Its sampler chain onto its sequence id, for every output from its prompt's last token
        on; llama.cpp re-plans its graph on the next decode (once per admission)."""
        if not (self.device_sampling and on_device(seq)):
            return
        settings, bias = seq.sampler.settings, seq.sampler.bias
        if self.ctx.chains.attach(seq.slot, settings, seq.seed & 0xFFFFFFFF, bias):
            seq.chain = self.ctx.chains.chain(seq.slot)
            seq.chain_stateful = settings.penalizes
            for token in seq.sampler.history if seq.chain_stateful else ():
                self.ctx.chains.advance(seq.chain, token)  # a resumed run's penalty history

    def _vacate(self, slot: Slot) -> None:
        slot.seq = None
        self.ctx.chains.detach(slot.index)

    def _step(self) -> None:
        # Python's share is CPU time of this thread outside llama_decode: wall time would count
        # the moments a busy machine leaves us descheduled.
        started, self._decode_cpu = time.thread_time(), 0.0
        self._retire_interrupted()
        plan = self._decode()
        if plan is not None:
            self._commit(plan)
            self._sample(plan)
        self.steps += 1
        self.python_s += time.thread_time() - started - self._decode_cpu

    def _retire_interrupted(self) -> None:
        for slot in self.slots:
            error = slot.seq.interruption() if slot.seq else None
            if error is not None:
                slot.seq.fail(error)
                self._vacate(slot)

    def _decode(self) -> Plan | None:
        """One llama_decode; with no KV room (1), halve the prompt tokens and retry, as
        llama-server does; any other failure fails the step's sequences."""
        live = [s.seq for s in self.slots if s.seq]
        budget = self.ctx.n_batch
        while True:
            plan = plan_step(live, budget, self.ctx.n_batch)
            if not plan.n_rows:
                return None
            started, cpu = time.perf_counter(), time.thread_time()
            code = self.ctx.decode(plan)
            self.decode_s += time.perf_counter() - started
            self._decode_cpu += time.thread_time() - cpu
            if code == 0:
                return plan
            if code != 1 or plan.prompt_tokens <= 1:
                self._fail_step(plan, code)
                return None
            budget = plan.prompt_tokens // 2

    def _fail_step(self, plan: Plan, code: int) -> None:
        why = "no room left in the KV cache" if code == 1 else f"llama_decode failed ({code})"
        for seq in plan.sequences:
            error_code = "context_length" if code == 1 else "provider_error"
            seq.fail(local_error(self.model, error_code, why))
            self.ctx.clear(seq.slot)
            self.slots[seq.slot].cached = []
            self._vacate(self.slots[seq.slot])

    def _commit(self, plan: Plan) -> None:
        n_seqs = len(plan.fed)  # one entry per sequence in the step
        for seq, tokens in plan.fed:
            self.slots[seq.slot].cached.extend(tokens)
            seq.n_past += len(tokens)
            seq.note_step(n_seqs)
            if not seq.pending:
                seq.next_token = None
                continue
            seq.pending = seq.pending[len(tokens) :]
            if not seq.pending:
                seq.prefilled.set()

    def _sample(self, plan: Plan) -> None:
        """Device-sampled tokens first (one read each), then the host path over the rest. The
        hot loop keeps its lookups local: at 32 slots it runs 32 times a step."""
        host, ended = [], []
        sampled, advance = self.ctx.sampled_reader(), self.ctx.chains.advance
        pieces, eog = self.vocab.pieces, self.vocab.eog
        for index, seq in plan.outputs:
            if seq.chain is None:
                host.append((index, seq))
                continue
            token = sampled(index)
            if token < 0:
                self._fail_unsampled(seq)
            elif seq.accept(token, pieces[token], token in eog):
                ended.append(seq)
            elif seq.chain_stateful:  # penalties count the tokens taken
                advance(seq.chain, token)
        self.tokens_on_device += len(plan.outputs) - len(host)
        for seq in ended:
            self._vacate(self.slots[seq.slot])
        if host:
            self._sample_on_host(host)

    def _accept(self, seq: Sequence, token: int) -> None:
        if seq.accept(token, self.vocab.pieces[token], token in self.vocab.eog):
            self._vacate(self.slots[seq.slot])

    def _fail_unsampled(self, seq: Sequence) -> None:
        seq.fail(local_error(self.model, "provider_error", "llama.cpp sampled no token"))
        self._vacate(self.slots[seq.slot])

    def _sample_on_host(self, outputs: list) -> None:
        rows = [self.ctx.logits(index) for index, _ in outputs]
        seqs = [seq for _, seq in outputs]
        tokens = []
        for seq, row in zip(seqs, rows, strict=True):
            if seq.logprobs is not None:  # the raw distribution (models_gpu.engine.logprobs)
                seq.logprobs.seen(row)
            seq.sampler.penalize(row)
            tokens.append(seq.sampler.sample(row))
        self._constrain(seqs, rows, tokens)
        self.tokens_on_host += len(tokens)
        for seq, token in zip(seqs, tokens, strict=True):
            self._accept(seq, token)

    def _constrain(self, seqs: list, rows: list, tokens: list[int]) -> None:
        """Masks of every constrained sequence in one call; a sampled token the grammar
        allows stands (the common case), otherwise the row is masked and sampled again."""
        constrained = [k for k, seq in enumerate(seqs) if seq.matcher is not None]
        if not constrained:
            return
        self.masks.fill([seqs[k].matcher for k in constrained])
        for mask_row, k in enumerate(constrained):
            if not self.masks.allows(mask_row, tokens[k]):
                self.masks.apply(mask_row, rows[k])
                tokens[k] = seqs[k].sampler.sample(rows[k])
