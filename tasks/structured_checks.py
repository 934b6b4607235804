"""Refuse at submit what a task's targets could not enforce, or could not even parse.

Every target (primary and fallbacks) is checked with the engine that will run it and, for
llama.cpp's native GBNF, against the vocabulary of the model it names: what passes here is
what the worker compiles, so no task is accepted only to fail (or crash a worker) every run.
"""

from rest_framework import serializers

from grammars.compile import GrammarError, check_compiles
from grammars.formats import named_grammars
from grammars.preflight import preflight, unsupported_names
from grammars.recursion import unguarded_cycle
from sop_llm.providers.structured import grammar_engine, method_of, refusal


def check_enforceable(data: dict) -> None:
    """Raise a 400 (ValidationError) naming the field and the engine's words, or return."""
    rf = data["response_format"]
    targets = [("options", data)] + [
        (f"fallback.{i}.options", t) for i, t in enumerate(data.get("fallback") or [])
    ]
    engines = [(target, _engine(target, where)) for where, target in targets]
    if rf["type"] == "grammar":
        _check_grammar(rf, engines)
    if rf["type"] == "json_schema":
        _check_schema(rf["json_schema"]["schema"], engines)
    if data.get("tools") and data.get("tool_choice") != "none":
        _check_tools(data["tools"], engines)


def _check_tools(tools: list[dict], engines: list[tuple[dict, str | None]]) -> None:
    """Each tool's parameters as the worker holds a call to them: compiled by llguidance on a
    grammar target (whatever its grammar_engine); on any target, refused when no value fits
    (a remote vendor checks its own calls: no other keyword of theirs is ours to refuse)."""
    grammar = any(engine for _, engine in engines)
    for index, tool in enumerate(tools):
        schema = tool["function"].get("parameters") or {"type": "object"}
        result = preflight(schema, "grammar", "llguidance") if grammar else _cycle_only(schema)
        if not result["ok"]:
            field = f"tools.{index}.function.parameters"
            message = f"cannot be enforced: {unsupported_names(result)}"
            raise serializers.ValidationError({field: message})


def _engine(target: dict, where: str) -> str | None:
    """The grammar engine of a target whose provider enforces with grammars, else None."""
    if method_of(target["provider"]) != "grammar":
        return None
    try:
        return grammar_engine(target.get("options"))
    except GrammarError as exc:
        raise serializers.ValidationError({f"{where}.grammar_engine": str(exc)}) from None


def _check_grammar(rf: dict, engines: list[tuple[dict, str | None]]) -> None:
    if any(engine is None for _, engine in engines):
        raise serializers.ValidationError(
            {"response_format": "GBNF grammars are enforced by the local provider only"}
        )
    field = "response_format.grammar" if rf.get("grammar") else "response_format.name"
    text = rf.get("grammar") or named_grammars()[rf["name"]].read_text()
    for engine, vocab in _distinct(engines):
        try:
            check_compiles("gbnf", text, engine, vocab)
        except GrammarError as exc:
            raise serializers.ValidationError({field: str(exc)}) from None


def _check_schema(schema: dict, engines: list[tuple[dict, str | None]]) -> None:
    seen = set()
    for target, engine in engines:
        vocab = _vocab(target, engine)
        if (target["provider"], engine, vocab) in seen:
            continue
        seen.add((target["provider"], engine, vocab))
        message = refusal(schema, target["provider"], target.get("options"), vocab)
        if message:
            raise serializers.ValidationError({"response_format.json_schema.schema": message})


def _distinct(engines: list[tuple[dict, str | None]]) -> list[tuple[str, str | None]]:
    """Each (engine, vocabulary) once: one compile per model file, not per fallback."""
    return list(dict.fromkeys((engine, _vocab(target, engine)) for target, engine in engines))


def _vocab(target: dict, engine: str | None) -> str | None:
    """The model file whose vocabulary llama.cpp parses a native grammar against."""
    if engine != "native":
        return None
    from models_gpu.catalog import catalog_resolve

    return catalog_resolve(target["model"]).path


def _cycle_only(schema: dict) -> dict:
    return preflight(schema, "none") if unguarded_cycle(schema) else {"ok": True}
