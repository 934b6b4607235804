"""The single-sequence path's token loop over `Llama.generate`, and the logits processors that
sit in front of it (logit bias, the logprobs recorder).

Our own loop (instead of create_completion) gives exact token counts, cancellation between
tokens, streaming that never splits a stop sequence or a UTF-8 character, and per-token cost of
one detokenize (create_completion re-detokenizes the whole answer on every token).
"""

import time

from models_gpu.engine.logprobs import Logprobs, Recorder
from sop_llm.providers.errors import provider_error
from sop_llm.providers.types import GenerateRequest, GenerateResult, Usage


def partial_result(loop: "TokenLoop", prompt_tokens: int, model: str, started: float):
    return GenerateResult(
        text=loop.text,
        finish_reason="length",
        usage=Usage(prompt_tokens, loop.count),
        provider="local",
        model=model,
        timings={"generation_ms": round((time.perf_counter() - started) * 1000, 1)},
    )


def with_bias(llama, bias: dict, processors, model_name: str):
    """The logit bias first: a grammar's mask after it still forbids what it forbids."""
    from llama_cpp import LogitsProcessorList

    from models_gpu.engine.batching.sampling import bias_processor, check_logit_bias

    check_logit_bias(bias, llama.n_vocab(), model_name)
    return LogitsProcessorList([bias_processor(bias), *(processors or [])])


def recording(logprobs: Logprobs, processors):
    """The processors with a recorder first, where it sees the raw logits."""
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList([Recorder(logprobs), *(processors or [])])


class TokenLoop:
    logprobs: Logprobs | None = None

    def __init__(
        self, llama, request: GenerateRequest, stops: list[str], limit: int, model, stop_tokens
    ):
        import llama_cpp

        self.llama, self.request, self.stops, self.limit, self.model = (
            llama,
            request,
            stops,
            limit,
            model,
        )
        # The vocabulary's end-of-generation tokens, and the chat template's turn markers.
        vocab = llama._model.vocab
        self._is_eog = lambda t: t in stop_tokens or llama_cpp.llama_vocab_is_eog(vocab, t)
        # The one text streamer (whole characters, stop strings) the batched engine uses too;
        # imported here, like llama_cpp, so the web never loads the batching package.
        from models_gpu.engine.batching.stream import TextStream

        self.stream = TextStream(stops)
        self.count, self.first_token_ms = 0, None
        self._started = time.perf_counter()
        self._deadline = time.monotonic() + request.timeout_seconds

    @property
    def text(self) -> str:
        """The text so far: a cancelled or timed-out run keeps it."""
        return self.stream.text

    def run(self, generator) -> tuple[str, str]:
        finish = "length"
        try:
            for token in generator:
                if self._is_eog(token):
                    finish = "stop"
                    break
                self._tick()
                if self.logprobs is not None:
                    self.logprobs.chose(token)
                self._send(self.stream.push(self.llama.detokenize([token])))
                if self.stream.stopped:
                    finish = "stop"
                    break
                if self.count >= self.limit:
                    break
                self._check_interrupts()
        finally:
            generator.close()
        self._send(self.stream.close(flush=finish == "length"))
        return self.stream.text, finish

    def _tick(self) -> None:
        self.count += 1
        if self.first_token_ms is None:
            self.first_token_ms = round((time.perf_counter() - self._started) * 1000, 1)

    def _send(self, piece: str) -> None:
        if piece and self.request.on_token is not None:
            self.request.on_token(piece)

    def _check_interrupts(self) -> None:
        if self.request.is_cancelled():
            message = f"cancelled after {self.count} tokens"
            raise provider_error("local", self.model, message, code="cancelled")
        if time.monotonic() > self._deadline:
            message = f"timed out after {self.request.timeout_seconds:g}s ({self.count} tokens)"
            raise provider_error("local", self.model, message, code="timeout")
