"""Constrained decoding for the local model: the output is valid by construction.

Engines:
- `llguidance` (default): the grammar's token mask is computed by llguidance and applied as a
  logits processor -- about as fast as unconstrained decoding (the mask is cheap to compute).
- `native`: llama.cpp's own GBNF sampler -- about 3x slower here on a 262k-token vocabulary,
  and its JSON-schema converter silently ignores bounds (minimum, maxItems, ...); selectable
  for comparison and for grammars llguidance refuses.
"""

from dataclasses import dataclass, field

import numpy as np

from grammars.compile import ENGINES, GrammarError, llg_grammar, source_of
from grammars.native import native_gbnf
from models_gpu.engine.lltokenizer import lltokenizer
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateResult, ResponseFormat


@dataclass
class Constraint:
    engine: str | None = None
    grammar: object | None = None
    processor: "_MaskProcessor | None" = None
    errors: list[str] = field(default_factory=list)

    def kwargs(self) -> dict:
        if self.processor is None:
            return {"grammar": self.grammar, "logits_processor": None}
        from llama_cpp import LogitsProcessorList

        return {"grammar": None, "logits_processor": LogitsProcessorList([self.processor])}

    def finish(self, result: GenerateResult, *, partial_ok: bool = False) -> None:
        """Raise if decoding broke, or if max_tokens cut the grammar short (unless the caller
        takes the text so far: `partial_ok`)."""
        if self.processor is not None and self.processor.error:
            raise ProviderError(
                f"local: constrained decoding failed: {self.processor.error}",
                code="grammar_error",
                provider="local",
                model=result.model,
            )
        complete = self.processor.matcher.is_accepting() if self.processor else None
        if self.engine and result.finish_reason == "length" and not complete and not partial_ok:
            raise ProviderError(
                f"local ({result.model}): max_tokens ran out before the grammar was complete",
                code="truncated",
                provider="local",
                model=result.model,
                partial=result,
            )

    def report(self) -> dict:
        return {} if self.engine is None else {"enforcement": "grammar", "engine": self.engine}


def engine_name(options: dict, default: str) -> str:
    """The grammar engine a local task asked for, else the service's default."""
    name = options.get("grammar_engine") or default
    if name not in ENGINES:
        raise ProviderError(
            f"unknown grammar_engine {name!r}; use one of {ENGINES}",
            code="bad_request",
            provider="local",
        )
    return name


def grammar_constraint(grammar: str, engine) -> Constraint:
    """An llguidance grammar already compiled (a tool call's) held by the mask processor."""
    return Constraint(engine="llguidance", processor=_MaskProcessor(engine, grammar))


def constraint_for(rf: ResponseFormat, engine, options: dict) -> Constraint:
    if rf.type == "text":
        return Constraint()
    name = engine_name(options, engine.config.grammar_engine)
    kind, text = source_of(rf)
    if name == "native":
        return Constraint(engine="native", grammar=_native_grammar(kind, text, engine))
    try:
        grammar = llg_grammar(kind, text)
    except GrammarError as exc:
        raise ProviderError(f"local: {exc}", code="bad_request", provider="local") from None
    return Constraint(engine="llguidance", processor=_MaskProcessor(engine, grammar))


class _MaskProcessor:
    """A llama-cpp-python logits processor: feeds sampled tokens to the matcher and masks the
    logits with its next-token bitmask. Exceptions inside it would be swallowed by the C
    callback, so they are kept in `error` and checked after generation."""

    def __init__(self, engine, grammar: str):
        import llguidance

        self.matcher = llguidance.LLMatcher(lltokenizer(engine.llama), grammar, log_level=0)
        self.n_vocab = engine.llama.n_vocab()
        self.mask = np.full(((self.n_vocab + 31) // 32,), -1, dtype=np.int32)
        self.prompt_len: int | None = None
        self.consumed = 0
        self.error: str | None = None

    def __call__(self, input_ids, scores):
        try:
            if self.prompt_len is None:
                self.prompt_len = len(input_ids)  # the first call sees the prompt alone
            for token in input_ids[self.prompt_len + self.consumed :]:
                self.matcher.consume_token(int(token))
                self.consumed += 1
            if self.matcher.is_error():
                raise RuntimeError(self.matcher.get_error())
            self.matcher.unsafe_compute_mask_ptr(self.mask.ctypes.data, self.mask.nbytes)
            allowed = np.unpackbits(self.mask.view(np.uint8), bitorder="little")
            scores[allowed[: scores.shape[0]] == 0] = -np.inf
        except Exception as exc:
            self.error = self.error or f"{type(exc).__name__}: {exc}"
        return scores


def _native_grammar(kind: str, text: str, engine):
    """llama.cpp's grammar object, built only from GBNF its parser has accepted in a child
    process (at submit, or here when the verdict is not remembered): a grammar it refuses
    would otherwise crash or hang this worker inside llama.cpp."""
    from llama_cpp import LlamaGrammar

    try:
        gbnf = native_gbnf(kind, text, engine.llama.model_path)
    except GrammarError as exc:
        raise ProviderError(f"local: {exc}", code="bad_request", provider="local") from None
    return LlamaGrammar.from_string(gbnf, verbose=False)
