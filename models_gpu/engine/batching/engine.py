"""BatchEngine: continuous batching over a model that llama-cpp-python has already loaded.

KV cache: one unified pool (the default) of n_ctx cells, with a per-slot budget of n_ctx / slots
enforced at admission: a task whose prompt + max_tokens exceeds the budget is refused up front,
naming both numbers, and since every slot (busy, or idle keeping its last prompt for reuse) holds
at most its budget, llama_decode never runs out of cells mid-answer. Why unified, measured here:
with per-slot streams (`kv_unified=False`) llama.cpp splits every step into ubatches of equal
tokens per sequence and of consecutive sequence ids only, so a step mixing a prompt with other
slots' tokens, or a gap in the busy slots, runs several forward passes, and the same prompt's
logits moved by up to 0.9 against running it alone; unified runs the step as one pass, and prompt
logits came out bit-identical alone and in a batch. Prefix copies between slots share cells
instead of copying a stream. The price: attention spans every used cell (masked), idle slots'
kept prompts included.
"""

import random
from dataclasses import replace

from models_gpu.engine.lltokenizer import lltokenizer
from models_gpu.engine.logprobs import Logprobs
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, GenerateResult

from .context import BatchContext
from .grammar import StepMasks, new_matcher
from .loop import DecodeLoop
from .sampling import check_logit_bias
from .sequence import Sequence, local_error
from .vocab import Vocab


class BatchEngine:
    def __init__(
        self,
        llama,
        *,
        slots: int = 4,
        n_ctx: int | None = None,
        n_ctx_per_slot: int | None = None,
        n_batch: int = 512,
        threads: int | None = None,
        kv_unified: bool = True,
        model_name: str = "local",
        device_sampling: bool = True,
    ):
        """`llama` is a loaded llama_cpp.Llama; its weights are shared, never freed here.
        n_ctx (all slots together; default: the Llama's) or n_ctx_per_slot sizes the KV cache.
        `device_sampling` False samples every slot on the host (for comparisons)."""
        n_ctx = n_ctx_per_slot * slots if n_ctx_per_slot else n_ctx or llama.n_ctx()
        threads = threads or llama.context_params.n_threads
        self.context = BatchContext(
            llama, slots=slots, n_ctx=n_ctx, n_batch=n_batch, threads=threads, unified=kv_unified
        )
        self._llama = llama
        masks = StepMasks(slots, self.context.n_vocab, threads=max(1, threads))
        self.loop = DecodeLoop(
            self.context, Vocab(llama), masks, model_name, device_sampling=device_sampling
        )
        self._closed = False
        # Should the Llama be closed first, free our context before its model (else: segfault).
        llama._model._exit_stack.callback(self.close)

    @property
    def n_ctx_per_slot(self) -> int:
        return self.context.n_ctx_slot

    def generate(
        self,
        request: GenerateRequest,
        *,
        prompt_tokens: list[int],
        stops: list[str] = (),
        stop_token_ids: set[int] = frozenset(),
        constraint: str | None = None,
        model_name: str,
        ignore_eos: bool = False,
    ) -> GenerateResult:
        """Run one sequence in the batch; blocks the calling thread, safe from many threads.
        `constraint` is an llguidance grammar (see `batch_constraint`); `ignore_eos` is for
        benchmarks, as llama-server's."""
        self._check_fits(len(prompt_tokens), request.params.max_tokens, model_name)
        check_logit_bias(request.params.logit_bias, self.context.n_vocab, model_name)
        seq = self._sequence(request, prompt_tokens, stops, stop_token_ids, constraint, model_name)
        seq.ignore_eos = ignore_eos
        resume = request.resume
        if resume is not None and resume.tokens and seq.logprobs is None:
            seq.resume_after(list(resume.tokens), resume.emitted, self.loop.vocab.pieces)
            resume.taken()
        self.loop.submit(seq)
        return seq.wait(self.loop.wake)

    def generate_n(
        self, request: GenerateRequest, n: int, *, prompt_tokens: list[int], **kw
    ) -> list[GenerateResult]:
        """n answers to one prompt, one prefill: the first sequence computes the prompt, the
        others start once it is in the KV cache and share it (slots.place copies the prefix,
        cells shared in the unified cache). Seeds are seed, seed+1, ...; only the first
        streams its text. n answers are not checkpointed: a rerun starts them over."""
        request = replace(request, checkpoint=None, resume=None)
        base = request.params.seed
        base = random.randint(0, 2**31 - n) if base is None else base
        first = self._start(request, base, prompt_tokens, kw)
        while not first.prefilled.wait(0.05):
            if request.is_cancelled():
                break
        quiet = replace(request, on_token=None)
        sequences = [first]
        try:
            sequences += [self._start(quiet, base + i, prompt_tokens, kw) for i in range(1, n)]
            return [seq.wait(self.loop.wake) for seq in sequences]
        finally:  # one failed or was cancelled: the others stop too, their slots freed
            for seq in sequences:
                seq.cancel_requested = seq.cancel_requested or not seq.done.is_set()
            self.loop.wake()

    def _start(self, request: GenerateRequest, seed: int, prompt_tokens, kw: dict) -> Sequence:
        request = replace(request, params=replace(request.params, seed=seed))
        self._check_fits(len(prompt_tokens), request.params.max_tokens, kw["model_name"])
        check_logit_bias(request.params.logit_bias, self.context.n_vocab, kw["model_name"])
        seq = self._sequence(
            request,
            prompt_tokens,
            kw.get("stops", ()),
            kw.get("stop_token_ids", frozenset()),
            kw.get("constraint"),
            kw["model_name"],
        )
        self.loop.submit(seq)
        return seq

    def _sequence(self, request, prompt_tokens, stops, stop_ids, constraint, model: str):
        seed = request.params.seed
        return Sequence(
            request,
            list(prompt_tokens),
            list(stops),
            model=model,
            seed=random.randint(0, 2**31 - 1) if seed is None else seed,
            matcher=self._matcher(constraint, model) if constraint else None,
            stop_ids=stop_ids,
            ignore_eos=False,
            logprobs=self._logprobs(request.params),
        )

    def _matcher(self, grammar: str, model: str):
        return new_matcher(lltokenizer(self._llama), grammar, model)

    def _logprobs(self, params) -> Logprobs | None:
        return Logprobs(params.top_logprobs, self.loop.vocab.piece) if params.logprobs else None

    def _check_fits(self, n_prompt: int, max_tokens: int, model: str) -> None:
        if n_prompt == 0:
            raise ProviderError("local: the prompt is empty", code="bad_request", provider="local")
        room = self.context.n_ctx_slot
        if n_prompt + max_tokens > room:
            raise local_error(
                model,
                "context_length",
                f"the prompt is {n_prompt} tokens and max_tokens {max_tokens}: "
                f"{n_prompt + max_tokens} > {room}, the context of one batch slot "
                f"(n_ctx {self.context.n_ctx} / {self.context.slots} slots)",
            )

    def stats(self) -> dict:
        loop = self.loop
        steps = max(1, loop.steps)
        return {
            "slots": self.context.slots,
            "busy": loop.busy(),
            "waiting": len(loop.waiting),
            "steps": loop.steps,
            "python_ms_per_step": round(loop.python_s * 1000 / steps, 3),
            "decode_ms_per_step": round(loop.decode_s * 1000 / steps, 3),
            "tokens_on_device": loop.tokens_on_device,
            "tokens_on_host": loop.tokens_on_host,
            "device_chains_live": self.context.chains.live,
        }

    def close(self) -> None:
        """Stop the loop (live and waiting sequences fail with `engine_closed`), then free our
        batch and context; the shared model stays loaded."""
        if self._closed:
            return
        self._closed = True
        self.loop.stop()
        self.context.close()
        self._llama = None
