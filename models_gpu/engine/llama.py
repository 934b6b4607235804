"""llama.cpp through llama-cpp-python: one loaded model, run alone (our token loop:
token_loop.py) or, with slots > 1, beside a batch engine on the same weights."""

import gc
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from models_gpu.engine.chat import ChatTemplate
from models_gpu.engine.config import EngineConfig, LoadParams
from models_gpu.engine.logprobs import Logprobs
from models_gpu.engine.token_loop import TokenLoop, partial_result, recording, with_bias
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, GenerateResult, Usage


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


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    stop_strings: tuple[str, ...] = ()
    stop_tokens: frozenset[int] = frozenset()
    template: str | None = None  # where the chat template came from; None for a raw prompt


_KV_TYPES = {"f16": 1, "f32": 0, "q8_0": 8, "q4_0": 2}


class LlamaEngine:
    """One loaded model: the Llama (tokenizer, and a context for what runs alone) and, with
    config.slots > 1, the batch engine that decodes many sequences per step on the same
    weights."""

    def __init__(self, path: str, params: LoadParams, config: EngineConfig):
        from llama_cpp import Llama

        self.path, self.params, self.config = path, params, config
        self.llama = Llama(
            model_path=path,
            n_ctx=config.single_n_ctx(params),
            n_gpu_layers=params.n_gpu_layers,
            n_batch=params.n_batch,
            type_k=_KV_TYPES[params.type_k],
            type_v=_KV_TYPES[params.type_v],
            flash_attn=params.flash_attn is True,
            n_threads=config.n_threads,
            n_threads_batch=config.n_threads,
            verbose=False,
        )
        if params.flash_attn == "auto":
            _flash_attn_auto(self.llama)
        self._chat_template: ChatTemplate | None = None
        self._single = threading.Lock()  # the Llama's own context runs one sequence at a time
        self.batch = self._batch_engine() if config.slots > 1 else None

    def _batch_engine(self):
        from models_gpu.engine.batching import BatchEngine

        config = self.config
        if config.local_engine == "synthetic":  # benchmarks and tests only
            from models_gpu.engine.synthetic import SyntheticEngine

            return SyntheticEngine(
                slots=config.slots,
                n_ctx=self.params.n_ctx,
                step_ms=config.synthetic_step_ms,
                model_name=Path(self.path).stem,
            )

        return BatchEngine(
            self.llama,
            slots=config.slots,
            n_ctx=self.params.n_ctx,
            n_batch=self.params.n_batch,
            threads=config.n_threads,
            model_name=Path(self.path).stem,
        )

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
        loop = TokenLoop(
            self.llama,
            request,
            list(p.stop) + list(prompt.stop_strings),
            min(p.max_tokens, n_ctx - len(tokens)),
            model_name,
            prompt.stop_tokens,
        )
        if p.logit_bias:
            logits_processor = with_bias(self.llama, p.logit_bias, logits_processor, model_name)
        if p.logprobs:
            loop.logprobs = Logprobs(p.top_logprobs, lambda t: self.llama.detokenize([t]))
            logits_processor = recording(loop.logprobs, logits_processor)
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
            exc.partial = partial_result(loop, len(tokens), model_name, started)
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
