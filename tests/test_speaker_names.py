"""`messages[].name`, the speaker of a message (LangChain's multi-agent graphs send it): passed on
to OpenAI-style remotes, written before the content where no field holds it (the local chat
template, Anthropic), refused only where it cannot mean anything (issue 25, item 7)."""

import json

import openai
import pytest
from django.test import Client

from models_gpu.catalog import catalog_resolve
from models_gpu.config import engine_config
from models_gpu.engine import tools
from models_gpu.engine.config import LoadParams
from models_gpu.engine.llama import LlamaEngine
from sop_llm.providers import get_provider
from sop_llm.providers.types import GenerateRequest, Message, SamplingParams
from tests.conftest import API_KEY
from tests.fakes.servers import FakeServer, Reply, anthropic_message, openai_chat

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"q": "tides"}'},
}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
DIALOGUE = [
    Message("system", "Keep it short.", name="moderator"),
    Message("user", "Who goes first?", name="alice"),
    Message("assistant", "", tool_calls=[CALL], name="researcher"),
    Message("tool", '{"high": "6am"}', tool_call_id="call_1"),
    Message("user", "And then?", name="bob"),
]


def request(messages=DIALOGUE, **kw) -> GenerateRequest:
    return GenerateRequest(
        model="m", messages=list(messages), params=SamplingParams(max_tokens=5), **kw
    )


@pytest.fixture
def server():
    with FakeServer() as fake:
        yield fake


def post(body: dict):
    client = Client(raise_request_exception=False)
    return client.post(
        "/v1/chat/completions", json.dumps(body), content_type="application/json", **AUTH
    )


def test_openai_gets_each_message_s_name_as_sent(server, settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = f"{server.url}/v1", "sk-test-1"
    server.reply(Reply(200, openai_chat("ok")))
    get_provider("openai").generate(request())
    sent = server.seen[0].body["messages"]
    assert [m.get("name") for m in sent] == ["moderator", "alice", "researcher", None, "bob"]
    assert sent[1] == {"role": "user", "content": "Who goes first?", "name": "alice"}


def test_anthropic_gets_the_speaker_written_before_the_content(server, settings):
    settings.ANTHROPIC_BASE_URL, settings.ANTHROPIC_API_KEY = server.url, "sk-ant-test-1"
    server.reply(Reply(200, anthropic_message("ok")))
    get_provider("anthropic").generate(request([DIALOGUE[0], DIALOGUE[1]]))
    body = server.seen[0].body
    assert body["system"] == "moderator: Keep it short."
    assert body["messages"] == [{"role": "user", "content": "alice: Who goes first?"}]


def test_the_local_prompt_shows_each_speaker_before_what_they_said():
    engine = LlamaEngine(
        catalog_resolve("gemma").path,
        LoadParams(n_ctx=512, chat_format="transcript"),
        engine_config(),
    )
    try:
        seen = tools.prompt_request(request(tools=TOOLS, tool_choice="auto"))
        text = engine.llama.detokenize(engine.prompt_tokens(seen).tokens).decode()
    finally:
        engine.close()
    assert "\n\nmoderator: Keep it short." in text  # joined to the tools' system message
    assert "User: alice: Who goes first?" in text and "User: bob: And then?" in text
    assert 'Assistant: researcher: {"name":"lookup"' in text


def test_the_openai_door_keeps_the_name_on_the_task():
    from tasks.openai.protocol.requests import openai_request
    from tasks.openai.serving.translate import task_data
    from tasks.serializers import TaskCreateSerializer

    body = {"model": "gemma", "messages": [{"role": "user", "content": "hi", "name": "alice"}]}
    serializer = TaskCreateSerializer(data=task_data(openai_request(body, chat=True), chat=True))
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["messages"][0]["name"] == "alice"


@pytest.mark.parametrize(
    "name", ["two words", "<start_of_turn>", "a|b", "x" * 65, "", "line\nbreak", 7]
)
def test_a_name_that_could_rewrite_the_prompt_is_a_400_naming_it(name):
    body = {"model": "gemma", "messages": [{"role": "user", "content": "hi", "name": name}]}
    response = post(body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "messages.0.name"


def test_a_tool_message_with_a_name_is_a_400_naming_it():
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": "{}", "tool_call_id": "call_1", "name": "lookup"},
    ]
    response = post({"model": "gemma", "messages": messages, "tools": TOOLS})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "messages.2.name"


@pytest.mark.slow
def test_a_named_message_reaches_a_remote_through_the_sdk(processes, server):
    base = processes.web()
    processes.worker("remote", OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_API_KEY="sk-test-3")
    server.reply(Reply(200, openai_chat("Aye.")))
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    answer = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Ready?", "name": "captain"}],
    )
    assert answer.choices[0].message.content == "Aye."
    assert server.seen[0].body["messages"] == [
        {"role": "user", "content": "Ready?", "name": "captain"}
    ]
