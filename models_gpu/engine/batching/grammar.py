"""Structured output per slot with llguidance: one matcher per sequence, the masks of a step
computed together, and a sampled token checked against its mask before any masking.

llama.cpp's native GBNF sampler is refused here (code `batch_unsupported`): it runs llama.cpp's
sampler over a 262k-entry candidate list per token, ~3x slower than the model itself, and in a
batch that cost would stall every slot. The caller runs such a task on the single-sequence path.
"""

import numpy as np

from grammars.compile import GrammarError, llg_grammar, source_of
from models_gpu.engine.structured import engine_name
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import ResponseFormat


def batch_constraint(
    rf: ResponseFormat, options: dict, default_engine: str = "llguidance"
) -> str | None:
    """The llguidance grammar a batched task is held to (None for plain text);
    `default_engine` is the service's (EngineConfig.grammar_engine)."""
    if rf.type == "text":
        return None
    if engine_name(options, default_engine) == "native":
        raise ProviderError(
            "local: the native GBNF engine does not run in the batch; run the task alone",
            code="batch_unsupported",
            provider="local",
        )
    try:
        return llg_grammar(*source_of(rf))
    except GrammarError as exc:
        raise ProviderError(f"local: {exc}", code="bad_request", provider="local") from None


class StepMasks:
    """The next-token bitmasks of every constrained sequence of one step, in one parallel call."""

    def __init__(self, rows: int, n_vocab: int, threads: int):
        import llguidance
        import llguidance.numpy as llnp

        self._llnp, self.n_vocab = llnp, n_vocab
        self.bits = llnp.allocate_token_bitmask(rows, n_vocab)
        self.executor = llguidance.LLExecutor(num_threads=threads)

    def fill(self, matchers: list) -> None:
        self._llnp.fill_next_token_bitmask_par(
            self.executor, [(m, i) for i, m in enumerate(matchers)], self.bits
        )

    def allows(self, row: int, token: int) -> bool:
        return bool((int(self.bits[row, token >> 5]) >> (token & 31)) & 1)

    def apply(self, row: int, logits: np.ndarray) -> None:
        allowed = np.unpackbits(self.bits[row].view(np.uint8), bitorder="little")
        logits[allowed[: self.n_vocab] == 0] = -np.inf


def new_matcher(tokenizer, grammar: str, model: str):
    import llguidance

    matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
    if matcher.is_error():
        raise ProviderError(
            f"local ({model}): the grammar failed to start: {matcher.get_error()}",
            code="grammar_error",
            provider="local",
            model=model,
        )
    return matcher
