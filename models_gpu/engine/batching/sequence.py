"""One request's life in the batch. The decode loop feeds it tokens; the caller's thread waits
on it, streams its text to `on_token` and watches for cancellation, so a slow callback or a
cancel check never holds up the other slots' decode step."""

import queue
import threading
import time
from dataclasses import replace

from sop_llm.providers.errors import ProviderError, provider_error
from sop_llm.providers.types import GenerateRequest, GenerateResult, Usage

from .sampling import Sampler, SamplerSettings
from .stream import TextStream

_DONE = object()
POLL_SECONDS = 0.05  # how often a waiting caller looks at is_cancelled() between tokens


def local_error(model: str, code: str, message: str) -> ProviderError:
    return provider_error("local", model, message, code=code)


class Sequence:
    def __init__(self, request: GenerateRequest, prompt: list[int], stops: list[str], **kw):
        self.request, self.model = request, kw["model"]
        self.prompt_len = len(prompt)  # the task's own prompt (usage counts it)
        self.prompt = prompt  # what is prefilled: the prompt, then any tokens resumed
        self.seed, self.matcher, self.ignore_eos = kw["seed"], kw["matcher"], kw["ignore_eos"]
        self.logprobs = kw.get("logprobs")
        self.stop_ids = frozenset(kw["stop_ids"])
        self.limit = request.params.max_tokens
        bias = request.params.logit_bias
        self.sampler = Sampler(SamplerSettings.of(request.params), self.seed, bias)
        self.chain = None  # its llama.cpp sampler chain while it samples on the device
        self.chain_stateful = False  # the chain keeps state that accepted tokens advance
        self.stream, self.outbox = TextStream(stops), queue.SimpleQueue()
        self.streams = request.on_token is not None
        # A callback that declares itself cheap and thread-safe (TokenStream: a queue put) is
        # called on the decode thread: no wake-up of the caller's thread for every token.
        self.inline = self.streams and getattr(request.on_token, "runs_inline", False)
        self.done = threading.Event()
        self.prefilled = threading.Event()  # its prompt is in the KV cache (or it ended)
        self.cancel_requested = False
        self.result: GenerateResult | None = None
        self.error: ProviderError | None = None
        # Where it stands in the batch: the loop's business.
        self.slot, self.pending, self.n_past, self.next_token = None, list(prompt), 0, None
        self.cached, self.count, self.steps, self.batch_sum, self.batch_max = 0, 0, 0, 0, 0
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + request.timeout_seconds
        self.first_token_ms = self.queue_ms = None
        self.tokens: list[int] = []  # generated (resumed ones included): what a checkpoint keeps
        self.resumed = 0
        # Logprobs are not kept: a task that asks for them starts over rather than resume.
        self.checkpoint = request.checkpoint if self.logprobs is None else None
        self._checkpointed, self._checkpointed_at = 0, time.monotonic()

    def resume_after(self, tokens: list[int], emitted: int, pieces) -> None:
        """Start after tokens an earlier run generated: they are prefilled with the prompt,
        count toward max_tokens, feed the penalties and the grammar, and their text (of which
        `emitted` characters were streamed) is the answer's beginning."""
        self.prompt = self.prompt + list(tokens)
        self.pending, self.resumed, self.count = list(self.prompt), len(tokens), len(tokens)
        self.tokens = list(tokens)
        self._checkpointed = len(tokens)
        for token in tokens:
            self.sampler.accept(token)
            if self.matcher is not None and not self.matcher.consume_token(token):
                raise local_error(self.model, "grammar_error", "resumed tokens break the grammar")
            self.stream.push(pieces[token])
        self.stream.emitted = min(emitted, len(self.stream.text))

    # --- the caller's thread -------------------------------------------------------
    def wait(self, wake) -> GenerateResult:
        """Block until finished, streaming text; a caller that stops waiting (an exception,
        rq's job timeout) gives its slot back."""
        try:
            while not self._drain_one():
                if self.request.is_cancelled():
                    self.cancel_requested = True
                    wake()
        finally:
            if not self.done.is_set():
                self.cancel_requested = True
                wake()
        if self.error is not None:
            raise self.error
        return self.result

    def _drain_one(self) -> bool:
        try:
            item = self.outbox.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return False
        if item is _DONE:
            return True
        if item and self.request.on_token is not None:
            self.request.on_token(item)
        return False

    # --- the decode loop -----------------------------------------------------------
    def interruption(self) -> ProviderError | None:
        if self.cancel_requested:  # before a preemption: a cancelled task is not requeued
            return local_error(self.model, "cancelled", f"cancelled after {self.count} tokens")
        if self.request.is_preempted():
            return local_error(self.model, "preempted", f"preempted after {self.count} tokens")
        if time.monotonic() > self.deadline:
            seconds = self.request.timeout_seconds
            return local_error(
                self.model, "timeout", f"timed out after {seconds:g}s ({self.count} tokens)"
            )
        return None

    def admitted(self, slot: int, cached: int, ticket: int) -> None:
        self.slot, self.cached, self.ticket = slot, cached, ticket
        self.pending, self.n_past = self.prompt[cached:], cached
        self.queue_ms = self._ms()

    def note_step(self, n_seqs: int) -> None:
        self.steps += 1
        self.batch_sum += n_seqs
        self.batch_max = max(self.batch_max, n_seqs)

    def accept(self, token: int, piece: bytes, eog: bool) -> bool:
        """Take a sampled token; True when the sequence has finished (or failed)."""
        if (eog and not self.ignore_eos) or token in self.stop_ids:
            return self.finish("stop")
        self.count += 1
        self.tokens.append(token)
        self.first_token_ms = self.first_token_ms or self._ms()
        self.sampler.accept(token)
        if self.logprobs is not None:
            self.logprobs.chose(token)
        if self.matcher is not None and not self.matcher.consume_token(token):
            return self.fail(local_error(self.model, "grammar_error", self.matcher.get_error()))
        text = self.stream.push(piece)
        if text and self.streams:  # a put wakes the caller's thread: only when it streams
            self._emit(text)
        if self.stream.stopped or (self.matcher is not None and self.matcher.is_stopped()):
            return self.finish("stop")  # a complete grammar allows only the end of text next
        if self.count >= self.limit:
            return self.finish("length")
        self.next_token = token
        if self.checkpoint is not None and self._checkpoint_due():
            self.checkpoint.write(self.tokens[:], self.stream.emitted)
        return False

    def _checkpoint_due(self) -> bool:
        every, ms = self.checkpoint.every_tokens, self.checkpoint.every_ms
        due = bool(every) and self.count - self._checkpointed >= every
        due = due or (bool(ms) and (time.monotonic() - self._checkpointed_at) * 1000 >= ms)
        if due:
            self._checkpointed, self._checkpointed_at = self.count, time.monotonic()
        return due

    def _emit(self, text: str) -> None:
        if self.inline:
            self.request.on_token(text)
        else:
            self.outbox.put(text)

    def finish(self, reason: str) -> bool:
        cut = reason == "length" and self.matcher is not None and not self.matcher.is_accepting()
        if cut and self.request.on_max_tokens != "return":
            message = "max_tokens ran out before the grammar was complete"
            return self.fail(local_error(self.model, "truncated", message))
        text = self.stream.close(flush=reason == "length")
        if text and self.streams:
            self._emit(text)
        self.result = self._result(reason)
        return self._done()

    def fail(self, error: ProviderError) -> bool:
        # What it generated is charged, and kept (a truncated or cancelled task's text so far).
        reason = "length" if error.code == "truncated" else error.code
        partial = self._result(reason)
        if error.code == "preempted":  # its checkpoint: where the next run goes on
            partial.meta["checkpoint"] = {"tokens": self.tokens[:], "emitted": self.stream.emitted}
        self.error = replace(error, partial=partial)  # one error may end many
        return self._done()

    def _done(self) -> bool:
        self.prefilled.set()
        self.done.set()
        self.outbox.put(_DONE)
        return True

    def _ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)

    def _result(self, reason: str) -> GenerateResult:
        timings = {
            "generation_ms": self._ms(),
            "first_token_ms": self.first_token_ms,
            "queue_ms": self.queue_ms,
            "slot": self.slot,
            "batch_size_max": self.batch_max,
            "batch_size_mean": round(self.batch_sum / max(1, self.steps), 2),
            "cached_prompt_tokens": self.cached,
            **({"resumed_tokens": self.resumed} if self.resumed else {}),
        }
        return GenerateResult(
            text=self.stream.text,
            finish_reason=reason,
            usage=Usage(self.prompt_len, self.count),
            provider="local",
            model=self.model,
            timings=timings,
            meta={"repro": {"seed_used": self.seed}, "resumed_tokens": self.resumed},
            logprobs=self.logprobs.within(self.stream.text) if self.logprobs else None,
        )
