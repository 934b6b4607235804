"""One local request's answers: the grammar it is held to (a tool call's, a response format's,
or none), where it runs (the batch, or alone for llama.cpp's native GBNF) and its n choices.

n > 1: in the batch, one prefill and n decodes (BatchEngine.generate_n); alone, n runs one after
another, each reusing the prompt's KV cache the previous one left (llama-cpp-python keeps the
longest common prefix). Choice i samples with seed + i.
"""

from dataclasses import replace

from models_gpu.engine import tools
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, GenerateResult

LLGUIDANCE = {"enforcement": "grammar", "engine": "llguidance"}


def local_generate(engine, request: GenerateRequest, model: str) -> tuple[GenerateResult, dict]:
    """The first choice, carrying the others in `choices`, and the structured-output report."""
    if request.messages is not None:
        request = tools.prompt_request(request)
    # Decided once: an answer under tools is held to the calls' grammar and read back as a call.
    calls = tools.grammar(request) if tools.active(request) else None
    grammar = _batch_grammar(engine, request, calls)
    if grammar is not False:
        results = _batched(engine, request, model, grammar)
        structured = LLGUIDANCE if grammar else {}
    else:
        runs = [_alone(engine, _seeded(request, i), model, calls) for i in range(request.params.n)]
        results, structured = [r for r, _ in runs], runs[0][1]
    if calls is not None:
        for result in results:
            _as_call(result, tools.names_of(request))
    return _joined(results), structured


def _batch_grammar(engine, request: GenerateRequest, calls: str | None) -> str | None | bool:
    """The llguidance grammar for the batch (None: plain text); False: run it alone."""
    from models_gpu.engine.batching import batch_constraint

    if engine.batch is None:
        return False
    if calls is not None:
        return calls
    try:
        return batch_constraint(
            request.response_format, request.options, engine.config.grammar_engine
        )
    except ProviderError as exc:
        if exc.code != "batch_unsupported":
            raise
        return False


def _alone(
    engine, request: GenerateRequest, model: str, calls: str | None
) -> tuple[GenerateResult, dict]:
    from models_gpu.engine.structured import constraint_for, grammar_constraint

    if calls is not None:
        constraint = grammar_constraint(calls, engine)
    else:
        constraint = constraint_for(request.response_format, engine, request.options)
    result = engine.generate(request, model_name=model, **constraint.kwargs())
    constraint.finish(result, partial_ok=request.on_max_tokens == "return")
    return result, constraint.report()


def _seeded(request: GenerateRequest, index: int) -> GenerateRequest:
    if index == 0:
        return request
    seed = request.params.seed
    params = replace(request.params, seed=None if seed is None else seed + index)
    return replace(request, params=params, on_token=None)  # only the first choice streams


def _batched(engine, request: GenerateRequest, model: str, grammar) -> list[GenerateResult]:
    prompt = engine.prompt_tokens(request)
    kw = {
        "prompt_tokens": prompt.tokens,
        "stops": list(request.params.stop) + list(prompt.stop_strings),
        "stop_token_ids": set(prompt.stop_tokens),
        "constraint": grammar,
        "model_name": model,
    }
    n = request.params.n
    results = (
        [engine.batch.generate(request, **kw)]
        if n == 1
        else engine.batch.generate_n(request, n, **kw)
    )
    for result in results:
        result.meta.setdefault("repro", {})["chat_template"] = prompt.template
    return results


def _as_call(result: GenerateResult, names: set[str]) -> None:
    if result.finish_reason == "length":  # a call cut short: the text so far, no call
        return
    result.tool_calls = tools.tool_calls_of(result.text, names)
    if result.tool_calls:
        result.text, result.finish_reason = "", "tool_calls"


def _joined(results: list[GenerateResult]) -> GenerateResult:
    first = results[0]
    if len(results) > 1:
        first.choices = results[1:]
        first.usage.completion_tokens = sum(r.usage.completion_tokens for r in results)
    return first
