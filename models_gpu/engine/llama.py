"""llama.cpp through llama-cpp-python: one loaded model and a token loop we control.

Our own loop over `Llama.generate` (instead of create_completion) gives exact token counts,
cancellation between tokens, streaming that never splits a stop sequence or a UTF-8 character,
and per-token cost of one detokenize (create_completion re-detokenizes the whole answer on
every token).
"""

import gc
import os
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from models_gpu.engine.chat import ChatTemplate
from models_gpu.engine.logprobs import Logprobs, Recorder
from sop_llm.providers.errors import ProviderError, provider_error
from sop_llm.providers.types import GenerateRequest, GenerateResult, Usage


@dataclass(frozen=True)
class LoadParams:
    n_ctx: int = 4096
    n_gpu_layers: int = -1
    n_batch: int = 512
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool | str = "auto"  # true, false, or "auto": llama.cpp decides per device
    chat_format: str | None = None

    def covers(self, wanted: "LoadParams") -> bool:
        """A loaded model serves a request when everything matches and its context is enough."""
        same = asdict(self) | {"n_ctx": 0} == asdict(wanted) | {"n_ctx": 0}
        return same and self.n_ctx >= wanted.n_ctx

    def to_dict(self) -> dict:
        return asdict(self)


def _flash_attn_auto(llama) -> None:
    """llama-cpp-python's Llama takes flash_attn as on/off only: remake its context with
    llama.cpp's AUTO (on where the device supports it). The batch context copies these params."""
    import contextlib

    import llama_cpp
    from llama_cpp import _internals

    llama.context_params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    fresh = _internals.LlamaContext(
        model=llama._model, params=llama.context_params, verbose=llama.verbose
    )
    old, llama._ctx = llama._ctx, llama._stack.enter_context(contextlib.closing(fresh))
    old.close()


def _threads() -> int:
    # llama-cpp-python defaults to half the cores; generation here is faster on all of them.
    from django.conf import settings

    return settings.LLAMA_THREADS or os.cpu_count() or 1


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    stop_strings: tuple[str, ...] = ()
    stop_tokens: frozenset[int] = frozenset()
    template: str | None = None  # where the chat template came from; None for a raw prompt


_KV_TYPES = {"f16": 1, "f32": 0, "q8_0": 8, "q4_0": 2}


def slots() -> int:
    from django.conf import settings

    return settings.GPU_SLOTS


def single_n_ctx(params: LoadParams) -> int:
    """The Llama's own context, for what runs alone (native GBNF): with a batch beside it, one
    slot's share, so the two contexts together hold n_ctx x (1 + 1/slots) of KV cache."""
    return params.n_ctx if slots() == 1 else max(256, params.n_ctx // slots())


class LlamaEngine:
    """One loaded model: the Llama (tokenizer, and a context for what runs alone) and, with
    GPU_SLOTS > 1, the batch engine that decodes many sequences per step on the same weights."""

    def __init__(self, path: str, params: LoadParams):
        from llama_cpp import Llama

        self.path, self.params = path, params
        self.llama = Llama(
            model_path=path,
            n_ctx=single_n_ctx(params),
            n_gpu_layers=params.n_gpu_layers,
            n_batch=params.n_batch,
            type_k=_KV_TYPES[params.type_k],
            type_v=_KV_TYPES[params.type_v],
            flash_attn=params.flash_attn is True,
            n_threads=_threads(),
            n_threads_batch=_threads(),
            verbose=False,
        )
        if params.flash_attn == "auto":
            _flash_attn_auto(self.llama)
        self._chat_template: ChatTemplate | None = None
        self._lltokenizer = None
        self._single = threading.Lock()  # the Llama's own context runs one sequence at a time
        self.batch = self._batch_engine() if slots() > 1 else None

    def _batch_engine(self):
        from django.conf import settings

        from models_gpu.engine.batching import BatchEngine

        if settings.LOCAL_ENGINE == "synthetic":  # benchmarks and tests only
            from models_gpu.engine.synthetic import SyntheticEngine

            return SyntheticEngine(
                slots=slots(),
                n_ctx=self.params.n_ctx,
                step_ms=settings.SYNTHETIC_STEP_MS,
                model_name=Path(self.path).stem,
            )

        return BatchEngine(
            self.llama,
            slots=slots(),
            n_ctx=self.params.n_ctx,
            n_batch=self.params.n_batch,
            threads=_threads(),
            lltokenizer=self.lltokenizer,
            model_name=Path(self.path).stem,
        )

    def lltokenizer(self):
        """llguidance's view of the vocabulary: ~1.3 s to build, so once per loaded model."""
        if self._lltokenizer is None:
            import warnings

            from llguidance.llamacpp import lltokenizer_from_vocab

            with warnings.catch_warnings():  # it calls a deprecated llama.cpp getter per token
                warnings.simplefilter("ignore", DeprecationWarning)
                self._lltokenizer = lltokenizer_from_vocab(self.llama._model.vocab)
        return self._lltokenizer

    def close(self) -> None:
        # Llama after close() segfaults: callers drop the engine with it. The batch's context
        # goes first: it lives on the Llama's model.
        if self.batch is not None:
            self.batch.close()
        self.llama.close()
        self.llama = None
        gc.collect()

    # --- prompt ---------------------------------------------------------------------
    def prompt_tokens(self, request: GenerateRequest) -> "Prompt":
        """Tokens of the prompt (chat template applied) and where the answer must stop."""
        if request.messages is None:
            tokens = self.llama.tokenize(request.prompt.encode(), add_bos=True, special=False)
            return Prompt(tokens)
        template = self.chat_template()
        messages = [{"role": m.role, "content": m.spoken} for m in request.messages]
        rendered = template.render(messages)
        tokens = self.llama.tokenize(rendered.text.encode(), add_bos=rendered.add_bos, special=True)
        return Prompt(tokens, template.stop_strings, template.stop_tokens, template.source)

    def chat_template(self) -> ChatTemplate:
        if self._chat_template is None:
            self._chat_template = ChatTemplate(self.llama, self.params.chat_format)
        return self._chat_template

    # --- generation -----------------------------------------------------------------
    def generate(
        self, request: GenerateRequest, *, logits_processor=None, grammar=None, model_name: str
    ) -> GenerateResult:
        with self._single:
            return self._generate(request, logits_processor, grammar, model_name)

    def _generate(self, request, logits_processor, grammar, model_name: str) -> GenerateResult:
        started = time.perf_counter()
        prompt = self.prompt_tokens(request)
        tokens = prompt.tokens
        n_ctx = self.llama.n_ctx()
        if len(tokens) >= n_ctx:
            raise ProviderError(
                f"local ({model_name}): the prompt is {len(tokens)} tokens; the loaded context "
                f"is {n_ctx}",
                code="context_length",
                provider="local",
                model=model_name,
            )
        p = request.params
        seed = p.seed if p.seed is not None else random.randint(0, 2**31 - 1)
        self.llama.set_seed(seed)
        loop = _TokenLoop(
            self.llama,
            request,
            list(p.stop) + list(prompt.stop_strings),
            min(p.max_tokens, n_ctx - len(tokens)),
            model_name,
            prompt.stop_tokens,
        )
        if p.logit_bias:
            logits_processor = _with_bias(self.llama, p.logit_bias, logits_processor, model_name)
        if p.logprobs:
            loop.logprobs = Logprobs(p.top_logprobs, lambda t: self.llama.detokenize([t]))
            logits_processor = _recording(loop.logprobs, logits_processor)
        generator = self.llama.generate(
            tokens,
            top_k=p.top_k,
            top_p=p.top_p,
            temp=p.temperature,
            repeat_penalty=p.repeat_penalty,
            frequency_penalty=p.frequency_penalty,
            presence_penalty=p.presence_penalty,
            reset=True,
            logits_processor=logits_processor,
            grammar=grammar,
        )
        try:
            text, finish = loop.run(generator)
        except ProviderError as exc:  # cancelled, timed out: what it generated is charged
            exc.partial = _partial(loop, len(tokens), model_name, started)
            raise
        elapsed = time.perf_counter() - started
        return GenerateResult(
            logprobs=loop.logprobs.within(text) if loop.logprobs else None,
            text=text,
            finish_reason=finish,
            usage=Usage(len(tokens), loop.count),
            provider="local",
            model=model_name,
            timings={
                "generation_ms": round(elapsed * 1000, 1),
                "first_token_ms": loop.first_token_ms,
            },
            meta={"repro": {"seed_used": seed, "chat_template": prompt.template}},
        )


def _partial(loop: "_TokenLoop", prompt_tokens: int, model: str, started: float):
    return GenerateResult(
        text=loop.text,
        finish_reason="length",
        usage=Usage(prompt_tokens, loop.count),
        provider="local",
        model=model,
        timings={"generation_ms": round((time.perf_counter() - started) * 1000, 1)},
    )


def _with_bias(llama, bias: dict, processors, model_name: str):
    """The logit bias first: a grammar's mask after it still forbids what it forbids."""
    from llama_cpp import LogitsProcessorList

    from models_gpu.engine.batching.sampling import bias_processor, check_logit_bias

    check_logit_bias(bias, llama.n_vocab(), model_name)
    return LogitsProcessorList([bias_processor(bias), *(processors or [])])


def _recording(logprobs: Logprobs, processors):
    """The processors with a recorder first, where it sees the raw logits."""
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList([Recorder(logprobs), *(processors or [])])


class _TokenLoop:
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
