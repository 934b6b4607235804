"""Compile response formats for the engine that will run them, once per distinct source.

Engines: `llguidance` (a token mask from llguidance) and `native` (llama.cpp's GBNF sampler,
checked in a child process: grammars/native.py). The web process compiles at submit with the
same function the GPU worker uses, so what passes submit is what runs.
"""

import json
import re
from functools import lru_cache

from grammars.bounds import bounded
from grammars.errors import GrammarError
from grammars.formats import ResponseFormat

__all__ = ["GrammarError", "check_compiles", "llg_grammar", "source_of"]

# Compact JSON: no free whitespace between tokens, so answers are shorter and faster.
JSON_OPTIONS = {"whitespace_flexible": False}
ENGINES = ("llguidance", "native")
_UNIMPLEMENTED = re.compile(r"Unimplemented keys: \[(.*?)\]")


def source_of(rf: ResponseFormat) -> tuple[str, str]:
    """(kind, canonical text): the cache key of a response format."""
    if rf.type == "json_schema":
        return "json_schema", json.dumps(rf.schema, sort_keys=True)
    if rf.type == "json_object":
        return "json_schema", json.dumps({"type": "object"})
    return "gbnf", rf.grammar or ""


@lru_cache(maxsize=256)
def llg_grammar(kind: str, text: str) -> str:
    """The llguidance grammar for a source, validated; GrammarError names what is refused."""
    import llguidance

    if kind == "json_schema":
        text = json.dumps(bounded(json.loads(text)))  # no number of unbounded length
        grammar = llguidance.LLMatcher.grammar_from_json_schema(text, defaults=JSON_OPTIONS)
    else:
        try:
            grammar = llguidance.grammar_from("gbnf", text)
        except Exception as exc:  # the GBNF converter raises its own parse errors
            raise GrammarError(f"the GBNF grammar does not parse: {exc}") from None
    error = llguidance.LLMatcher.validate_grammar(grammar)
    if error:
        found = _UNIMPLEMENTED.search(error)
        keywords = json.loads(f"[{found.group(1)}]") if found else []
        raise GrammarError(error.strip().splitlines()[0][:500], keywords)
    return grammar


def check_compiles(kind: str, text: str, engine: str, vocab_path: str | None = None) -> None:
    """Compile a source with `engine` as the worker will; GrammarError names the problem."""
    if engine == "native":
        from grammars.native import native_gbnf

        native_gbnf(kind, text, vocab_path)
    else:
        llg_grammar(kind, text)
