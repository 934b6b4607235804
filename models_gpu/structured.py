"""Constrained decoding for the local model: the output is valid by construction.

Engines: `native` (llama.cpp's GBNF sampler). Grammars are compiled once per distinct
schema/grammar and cached.
"""

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache

from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import ResponseFormat


@dataclass
class Constraint:
    engine: str | None = None
    grammar: object | None = None
    logits_processor: object | None = None
    errors: list[str] = field(default_factory=list)

    def kwargs(self) -> dict:
        return {"grammar": self.grammar, "logits_processor": self.logits_processor}

    def check(self) -> None:
        if self.errors:
            raise ProviderError(
                f"local: constrained decoding failed: {self.errors[0]}",
                code="grammar_error",
                provider="local",
            )

    def report(self) -> dict:
        if self.engine is None:
            return {}
        return {"enforcement": "grammar", "engine": self.engine}


def constraint_for(rf: ResponseFormat, engine, options: dict) -> Constraint:
    if rf.type == "text":
        return Constraint()
    return Constraint(engine="native", grammar=_native_grammar(_grammar_source(rf)))


def _grammar_source(rf: ResponseFormat) -> tuple[str, str]:
    if rf.type == "json_schema":
        return "schema", json.dumps(rf.schema, sort_keys=True)
    if rf.type == "json_object":
        return "schema", json.dumps({"type": "object"})
    return "gbnf", rf.grammar or ""


@lru_cache(maxsize=128)
def _native_grammar(source: tuple[str, str]):
    from llama_cpp import LlamaGrammar

    kind, text = source
    try:
        if kind == "schema":
            return LlamaGrammar.from_json_schema(text, verbose=False)
        return LlamaGrammar.from_string(text, verbose=False)
    except Exception as exc:  # llama.cpp raises bare ValueError/AssertionError here
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        raise ProviderError(
            f"local: the {kind} ({digest}) cannot be compiled: {exc}",
            code="bad_request",
            provider="local",
        ) from None
