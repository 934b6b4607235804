"""The decode loop: one thread; each step is one llama_decode over every live sequence, then
every sequence samples its next token from its own logits row.

Between steps, waiting sequences are admitted into free slots (FIFO), reusing KV prefixes.
"""

import itertools
import threading
import time
from collections import deque

from .plan import Plan, plan_step
from .sequence import POLL_SECONDS, Sequence, local_error
from .slots import Slot, place


class DecodeLoop:
    def __init__(self, context, vocab, masks, model: str):
        self.ctx, self.vocab, self.masks, self.model = context, vocab, masks, model
        self.slots = [Slot(i) for i in range(context.slots)]
        self.waiting: deque[Sequence] = deque()
        self.cond = threading.Condition()
        self.running = True
        self._tickets = itertools.count()
        self.steps, self.python_s, self.decode_s = 0, 0.0, 0.0
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

    def _step(self) -> None:
        # Python's share is CPU time of this thread outside llama_decode: wall time would count
        # the moments a busy machine leaves us descheduled.
        started = time.thread_time()
        self._retire_interrupted()
        plan = self._decode()
        if plan is not None:
            self._commit(plan)
            self._sample(plan)
        self.steps += 1
        self.python_s += time.thread_time() - started

    def _retire_interrupted(self) -> None:
        for slot in self.slots:
            error = slot.seq.interruption() if slot.seq else None
            if error is not None:
                slot.seq.fail(error)
                slot.seq = None

    def _decode(self) -> Plan | None:
        """One llama_decode; with no KV room (1), halve the prompt tokens and retry, as
        llama-server does; any other failure fails the step's sequences."""
        live = [s.seq for s in self.slots if s.seq]
        budget = self.ctx.n_batch
        while True:
            plan = plan_step(live, budget, self.ctx.n_batch)
            if not plan.rows:
                return None
            started, cpu = time.perf_counter(), time.thread_time()
            code = self.ctx.decode(plan.rows)
            self.decode_s += time.perf_counter() - started
            self.python_s -= time.thread_time() - cpu
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
            self.slots[seq.slot].cached, self.slots[seq.slot].seq = [], None

    def _commit(self, plan: Plan) -> None:
        for seq, tokens in plan.fed:
            self.slots[seq.slot].cached.extend(tokens)
            seq.n_past += len(tokens)
            if seq.pending:
                seq.pending = seq.pending[len(tokens) :]
                if not seq.pending:
                    seq.prefilled.set()
            else:
                seq.next_token = None
        sequences = plan.sequences
        for seq in sequences:
            seq.note_step(len(sequences))

    def _sample(self, plan: Plan) -> None:
        rows = [self.ctx.logits(index) for index, _ in plan.outputs]
        seqs = [seq for _, seq in plan.outputs]
        tokens = []
        for seq, row in zip(seqs, rows, strict=True):
            if seq.logprobs is not None:  # the raw distribution (models_gpu.logprobs)
                seq.logprobs.seen(row)
            seq.sampler.penalize(row)
            tokens.append(seq.sampler.sample(row))
        self._constrain(seqs, rows, tokens)
        for seq, token in zip(seqs, tokens, strict=True):
            if seq.accept(token, self.vocab.piece(token), self.vocab.is_eog(token)):
                self.slots[seq.slot].seq = None

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
