"""Sampling on the device (llama.cpp's backend sampler chains, issue 26) in the batch engine, on
the real Gemma 3 270M model: plain slots sample inside llama_decode, slots that need the logits
(a grammar, logprobs) on the host, in the same steps."""

import json
import threading
from pathlib import Path

import pytest

from bench.common import wait_until
from models_gpu.engine.batching import BatchEngine, batch_constraint
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, ResponseFormat, SamplingParams

MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "gemma-3-270m-q4_k_m.gguf"
SLOTS, N_CTX = 4, 2048
PROMPT = "Once upon a time"
REPEATING = "one two one two one two one two one two"
pytestmark = pytest.mark.slow
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def llama():
    from llama_cpp import Llama

    model = Llama(model_path=str(MODEL_PATH), n_ctx=N_CTX, n_threads=2, verbose=False)
    yield model
    model.close()


@pytest.fixture(scope="module")
def engine(llama):
    batch = BatchEngine(llama, slots=SLOTS, n_ctx=N_CTX)
    yield batch
    batch.close()


def request(max_tokens=12, **params) -> GenerateRequest:
    params = {"max_tokens": max_tokens, "temperature": 0.0, "seed": 7, **params}
    return GenerateRequest(model="gemma", params=SamplingParams(**params))


def generate(engine, llama, req: GenerateRequest, text: str = PROMPT, **kw):
    tokens = llama.tokenize(text.encode(), add_bos=True)
    return engine.generate(req, prompt_tokens=tokens, model_name="gemma", **kw)


def counted(engine, run) -> tuple[object, dict]:
    """run()'s result and how many tokens it took on the device and on the host."""
    before = engine.stats()
    result = run()
    after = engine.stats()
    moved = {k: after[k] - before[k] for k in ("tokens_on_device", "tokens_on_host")}
    return result, moved


def idle(engine) -> bool:
    stats = engine.stats()
    return stats["busy"] == 0 and stats["device_chains_live"] == 0


def test_a_plain_sequence_samples_on_the_device_and_a_logprobs_one_on_the_host(engine, llama):
    plain, on_plain = counted(engine, lambda: generate(engine, llama, request()))
    with_logprobs, on_host = counted(
        engine, lambda: generate(engine, llama, request(logprobs=True))
    )
    assert on_plain == {"tokens_on_device": plain.usage.completion_tokens, "tokens_on_host": 0}
    assert on_host == {
        "tokens_on_device": 0,
        "tokens_on_host": with_logprobs.usage.completion_tokens,
    }


def test_greedy_text_is_the_same_sampled_on_the_device_and_on_the_host(engine, llama):
    on_device = generate(engine, llama, request(max_tokens=24))
    on_host = generate(engine, llama, request(max_tokens=24, logprobs=True))
    assert on_device.text == on_host.text and on_device.usage.completion_tokens == 24


def test_an_engine_without_device_sampling_gives_the_same_greedy_text(engine, llama):
    host_only = BatchEngine(llama, slots=2, n_ctx=512, device_sampling=False)
    try:
        alone_on_host, moved = counted(host_only, lambda: generate(host_only, llama, request()))
    finally:
        host_only.close()
    assert moved["tokens_on_device"] == 0
    assert alone_on_host.text == generate(engine, llama, request()).text


def test_grammar_and_plain_sequences_share_steps_each_sampled_where_it_can_be(engine, llama):
    grammar = batch_constraint(ResponseFormat("json_schema", PERSON), {})
    outcomes: dict = {}

    def run(name, req, kw):
        outcomes[name] = generate(engine, llama, req, **kw)

    jobs = {
        "json": (request(max_tokens=60), {"constraint": grammar}),
        "plain": (request(max_tokens=40, temperature=0.8, seed=3), {"ignore_eos": True}),
    }
    before = engine.stats()
    threads = [threading.Thread(target=run, args=(n, *job)) for n, job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = engine.stats()
    assert json.loads(outcomes["json"].text).keys() == {"name", "age"}
    assert (
        after["tokens_on_host"] - before["tokens_on_host"]
        >= outcomes["json"].usage.completion_tokens - 1
    )
    assert after["tokens_on_device"] - before["tokens_on_device"] == 40
    assert outcomes["plain"].timings["batch_size_max"] == 2  # they did share steps


def test_a_seeded_device_sequence_gives_the_same_text_alone_twice(engine, llama):
    seeded = request(max_tokens=24, temperature=0.9, top_k=0, top_p=1.0, seed=1234)
    first, moved = counted(engine, lambda: generate(engine, llama, seeded))
    second = generate(engine, llama, seeded)
    other_seed = generate(engine, llama, request(max_tokens=24, temperature=0.9, seed=99))
    assert moved["tokens_on_device"] == 24
    assert first.text == second.text and first.meta["repro"]["seed_used"] == 1234
    assert other_seed.text != first.text


def test_penalties_change_the_device_text_as_they_change_the_host_text(engine, llama):
    plain = generate(engine, llama, request(max_tokens=24, repeat_penalty=1.0), REPEATING)
    penalized = request(max_tokens=24, repeat_penalty=1.8, frequency_penalty=0.5)
    on_device = generate(engine, llama, penalized, REPEATING)
    host = request(max_tokens=24, repeat_penalty=1.8, frequency_penalty=0.5, logprobs=True)
    on_host = generate(engine, llama, host, REPEATING)
    assert on_device.text != plain.text
    assert on_device.text == on_host.text


@pytest.mark.parametrize("logprobs", [False, True], ids=["device", "host"])
def test_a_logit_bias_of_minus_100_forbids_the_greedy_token(engine, llama, logprobs):
    tokens = llama.tokenize(PROMPT.encode(), add_bos=True)
    first = generate(engine, llama, request(max_tokens=1, logprobs=logprobs)).text
    banned = llama.tokenize(first.encode(), add_bos=False)[0]
    req = request(max_tokens=16, logprobs=logprobs, logit_bias={str(banned): -100})
    result = engine.generate(req, prompt_tokens=tokens, model_name="gemma")
    assert banned not in llama.tokenize(result.text.encode(), add_bos=False)
    assert not result.text.startswith(first)


@pytest.mark.parametrize("logprobs", [False, True], ids=["device", "host"])
def test_a_logit_bias_on_end_of_turn_ends_one_sequence_while_another_goes_on(
    engine, llama, logprobs
):
    eot = llama.tokenize(b"<end_of_turn>", add_bos=False, special=True)[0]
    results: dict = {}

    def run(name, req):
        results[name] = generate(engine, llama, req)

    ended = request(max_tokens=16, logprobs=logprobs, logit_bias={eot: 100})
    jobs = {"ended": ended, "long": request(max_tokens=16)}
    threads = [threading.Thread(target=run, args=job) for job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (results["ended"].finish_reason, results["ended"].text) == ("stop", "")
    assert results["long"].usage.completion_tokens == 16


def test_every_sampler_chain_is_freed_after_four_hundred_tasks_ended_every_way(engine, llama):
    """Finished, stopped by a stop string, cancelled in flight, and timed out: each detaches and
    frees its chain."""
    before = engine.stats()
    made_before = engine.context.chains.made
    cancel = threading.Event()
    jobs = []
    for i in range(400):
        kind = i % 4
        req = request(max_tokens=1 if kind == 0 else 6, temperature=0.7, seed=i)
        if kind == 2:
            req.is_cancelled = cancel.is_set
        if kind == 3:
            req.timeout_seconds = 0.02
        jobs.append((req, {"stops": [" "]} if kind == 1 else {}))
    tokens = llama.tokenize(PROMPT.encode(), add_bos=True)
    failures = []

    def worker(part):
        for req, kw in part:
            try:
                engine.generate(req, prompt_tokens=tokens, model_name="gemma", **kw)
            except ProviderError as exc:
                failures.append(exc.code)

    threads = [threading.Thread(target=worker, args=(jobs[k::SLOTS],)) for k in range(SLOTS)]
    for thread in threads:
        thread.start()
    cancel.set()
    for thread in threads:
        thread.join()
    wait_until(lambda: idle(engine), what="every slot free and every chain freed")
    chains = engine.context.chains
    assert chains.made - made_before >= 200  # tasks that reached a slot got a chain
    assert chains.made == chains.freed and engine.stats()["device_chains_live"] == 0
    assert set(failures) <= {"cancelled", "timeout"}
    assert engine.stats()["tokens_on_device"] > before["tokens_on_device"]
