"""Local chat on the real Gemma 3 270M: turns end, and no message is dropped from the prompt."""

import re

import numpy as np
import openai
import pytest
from django.conf import settings
from llama_cpp import LogitsProcessorList

from models_gpu.catalog import catalog_resolve
from models_gpu.config import engine_config
from models_gpu.engine.chat import ChatTemplate
from models_gpu.engine.config import LoadParams
from models_gpu.engine.llama import LlamaEngine
from models_gpu.guard import gpu_guard
from sop_llm.providers import get_provider
from sop_llm.providers.types import GenerateRequest, Message, SamplingParams
from tests.conftest import API_KEY

pytestmark = pytest.mark.slow
# A second turn, in any of the shapes seen: a transcript header, Gemma's role line glued to junk
# ("Hello mendatanguser\n"), or a marker token's text.
SECOND_TURN = re.compile(r"\n(User|Assistant|System|Tool):|(user|model)\n|<(start|end)_of_turn>")
# Gemma's official chat template (google/gemma-3 tokenizer_config.json), text content only.
GEMMA_OFFICIAL = (
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}{%- else -%}"
    '{%- set first_user_prefix = "" -%}{%- set loop_messages = messages -%}{%- endif -%}'
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@pytest.fixture(autouse=True)
def fresh_guard():
    yield
    gpu_guard().shutdown()


@pytest.fixture(scope="module")
def vocab():
    """The real model's tokenizer alone (no weights): enough to render and tokenize prompts."""
    from llama_cpp import Llama

    llama = Llama(
        str(settings.MODELS_DIR / "gemma-3-270m-q4_k_m.gguf"), vocab_only=True, verbose=False
    )
    yield llama
    llama.close()


def chat(*messages: tuple[str, str], **params) -> GenerateRequest:
    params = {"max_tokens": 60, "temperature": 0.0, "seed": 1, **params}
    return GenerateRequest(
        model="gemma", messages=[Message(*m) for m in messages], params=SamplingParams(**params)
    )


@pytest.mark.parametrize(
    "question", ["Hi", "Hello", "What is the capital of France?", "Tell me a joke."]
)
def test_a_greedy_chat_answer_ends_its_turn_and_holds_no_second_one(question):
    result = get_provider("local").generate(chat(("user", question)))
    assert result.finish_reason == "stop" and result.text.strip()
    assert not SECOND_TURN.search(result.text), result.text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_sampled_chat_answer_never_holds_a_second_turn(seed):
    for question in ("Hi", "What is the capital of France?", "Tell me a joke."):
        result = get_provider("local").generate(
            chat(("user", question), temperature=1.0, seed=seed)
        )
        assert not SECOND_TURN.search(result.text), result.text


def test_the_readme_openai_example_answers_and_ends_its_turn(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=120)
    for extra in ({"temperature": 0}, {"seed": 0}):
        completion = client.chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": "Hi"}], **extra
        )
        answer = completion.choices[0]
        assert answer.finish_reason == "stop" and answer.message.content.strip() == "Hi"


def test_a_system_message_reaches_the_prompt_and_the_answer():
    local = get_provider("local")
    question = ("user", "What is 2+2?")
    plain = local.generate(chat(question))
    told = local.generate(chat(("system", "Always answer in French."), question))
    assert told.usage.prompt_tokens >= plain.usage.prompt_tokens + 6  # "System: Always ..."
    assert told.text != plain.text


def test_a_template_without_a_system_role_gets_it_before_the_first_user_message(vocab):
    rendered = ChatTemplate(vocab, "gemma").render(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert rendered.text == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    )


@pytest.mark.parametrize(
    ("chat_format", "shown"),
    [
        ("transcript", "Tool: 42 degrees"),
        ("gemma", "Tool result:\n42 degrees"),
        ("chatml", "Tool result:\n42 degrees"),
    ],
)
def test_tool_messages_appear_in_the_rendered_prompt(vocab, chat_format, shown):
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me look."},
        {"role": "tool", "content": "42 degrees"},
    ]
    assert shown in ChatTemplate(vocab, chat_format).render(messages).text


def test_a_template_s_turn_markers_are_stop_tokens_derived_from_the_template(vocab):
    start, end = (
        vocab.tokenize(t.encode(), add_bos=False, special=True)[0]
        for t in ("<start_of_turn>", "<end_of_turn>")
    )
    assert ChatTemplate(vocab, "gemma").stop_tokens == {start, end}
    transcript = ChatTemplate(vocab, "transcript")
    assert transcript.stop_tokens == set() and "\nUser:" in transcript.stop_strings


def test_the_gguf_s_own_template_wins_over_the_named_format(vocab, monkeypatch):
    monkeypatch.setitem(vocab.metadata, "tokenizer.chat_template", GEMMA_OFFICIAL)
    template = ChatTemplate(vocab, "chatml")
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "tool", "content": "42"},
    ]
    assert template.source == "gguf" and len(template.stop_tokens) == 2
    assert template.render(messages).text == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi\n\nTool result:\n42<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_a_gemma_turn_marker_token_ends_the_answer_though_it_renders_as_nothing():
    """A chat-tuned Gemma ends its turn with <start_of_turn> or <end_of_turn>; the base model
    never emits either, so the model is made to emit <start_of_turn> after three tokens."""
    info = catalog_resolve("gemma")
    engine = LlamaEngine(info.path, LoadParams(n_ctx=512, chat_format="gemma"), engine_config())
    marker = engine.llama.tokenize(b"<start_of_turn>", add_bos=False, special=True)[0]
    prompt_length = len(engine.prompt_tokens(chat(("user", "Hi"))).tokens)

    def emit_marker_third(tokens: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if len(tokens) - prompt_length == 3:
            logits[:] = -np.inf
            logits[marker] = 0.0
        return logits

    try:
        result = engine.generate(
            chat(("user", "Hi")),
            logits_processor=LogitsProcessorList([emit_marker_third]),
            model_name="g",
        )
    finally:
        engine.close()
    assert result.finish_reason == "stop" and result.usage.completion_tokens == 3
