"""Each remote provider against a real HTTP server on 127.0.0.1 speaking its wire format."""

import pytest

from sop_llm.providers import REGISTRY, Provider, get_provider
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, Message, ResponseFormat, SamplingParams
from tests.fakes.servers import (
    FakeServer,
    Reply,
    anthropic_error,
    anthropic_message,
    openai_chat,
    openai_error,
)


def chat(model="gpt-4o-mini", **kw) -> GenerateRequest:
    messages = [Message("system", "Be brief."), Message("user", "Say hi")]
    return GenerateRequest(
        model=model, messages=messages, params=SamplingParams(max_tokens=20, seed=7), **kw
    )


@pytest.fixture
def server():
    with FakeServer() as fake:
        yield fake


@pytest.fixture
def openai_at(server, settings):
    settings.OPENAI_BASE_URL = f"{server.url}/v1"
    settings.OPENAI_API_KEY = "sk-test-openai-secret-123"
    return server


def test_every_registered_provider_satisfies_the_protocol_without_importing_llama_cpp():
    import sys

    for name in REGISTRY:
        assert isinstance(get_provider(name), Provider)
    assert "llama_cpp" not in sys.modules or "pytest" in sys.modules  # web never needs it


def test_openai_returns_the_answer_with_usage(openai_at):
    openai_at.reply(Reply(200, openai_chat("Hi!", prompt_tokens=11, completion_tokens=2)))
    result = get_provider("openai").generate(chat())
    assert (result.text, result.finish_reason) == ("Hi!", "stop")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (11, 2)
    assert result.response_id == "chatcmpl-fake123" and result.provider == "openai"
    sent = openai_at.seen[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer sk-test-openai-secret-123"
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.body["max_tokens"] == 20 and sent.body["seed"] == 7


def test_openai_sends_json_schema_as_its_native_strict_response_format(openai_at):
    openai_at.reply(Reply(200, openai_chat('{"a": 1}')))
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    result = get_provider("openai").generate(
        chat(response_format=ResponseFormat("json_schema", schema))
    )
    assert openai_at.seen[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert result.meta["structured"] == {"enforcement": "provider_strict"}


def test_a_schema_outside_openai_strict_mode_is_sent_non_strict_and_validated(openai_at):
    openai_at.reply(Reply(200, openai_chat('{"a": 1}')))
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}}
    result = get_provider("openai").generate(
        chat(response_format=ResponseFormat("json_schema", schema))
    )
    assert openai_at.seen[0].body["response_format"]["json_schema"]["strict"] is False
    assert result.meta["structured"] == {"enforcement": "validated"}


@pytest.mark.parametrize(
    "status,code,retryable",
    [
        (400, "bad_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "not_found", False),
        (429, "rate_limited", True),
        (500, "server_error", True),
        (503, "server_error", True),
    ],
)
def test_openai_errors_are_classified(openai_at, status, code, retryable):
    openai_at.reply(openai_error(status, "remote says no"))
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat())
    assert (caught.value.code, caught.value.retryable, caught.value.status) == (
        code,
        retryable,
        status,
    )
    assert (
        "openai (gpt-4o-mini)" in caught.value.message and "remote says no" in caught.value.message
    )


def test_a_context_length_error_is_final(openai_at):
    openai_at.reply(
        openai_error(
            400,
            "This model's maximum context length is 8192 tokens",
            code="context_length_exceeded",
        )
    )
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat())
    assert caught.value.code == "context_length" and not caught.value.retryable


def test_a_refusal_is_a_final_error(openai_at):
    body = openai_chat("")
    body["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    openai_at.reply(Reply(200, body))
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat())
    assert caught.value.code == "content_refused"


def test_retry_after_is_read_from_a_429(openai_at):
    openai_at.reply(Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}))
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat())
    assert caught.value.retry_after == 7.0


def test_a_timeout_is_retryable(openai_at):
    openai_at.reply(Reply(200, openai_chat("late"), delay=1.0))
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat(timeout_seconds=0.2))
    assert caught.value.code == "timeout" and caught.value.retryable


def test_a_closed_port_is_a_retryable_connection_error(settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "http://127.0.0.1:1/v1", "sk-x"
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat())
    assert caught.value.code == "connection" and caught.value.retryable


@pytest.mark.parametrize(
    "reply,what",
    [
        (Reply(200, raw=b"<html>gateway</html>"), "not JSON"),
        (Reply(200, {"choices": []}), "unexpected shape"),
        (Reply(200, {"choices": [{"message": {"content": 42}}]}), "unexpected shape"),
    ],
)
def test_a_malformed_answer_is_a_clear_error_not_a_crash(openai_at, reply, what):
    openai_at.reply(reply)
    with pytest.raises(ProviderError) as caught:
        get_provider("openai").generate(chat())
    assert caught.value.code == "bad_response" and what in caught.value.message


def test_openai_without_a_key_says_which_setting_is_missing(settings):
    settings.OPENAI_API_KEY = None
    with pytest.raises(ProviderError, match="OPENAI_API_KEY"):
        get_provider("openai").generate(chat())


def test_openai_compatible_takes_a_base_url_key_and_headers_from_the_request(server):
    server.reply(Reply(200, openai_chat("from vllm", model="qwen")))
    request = chat(
        model="qwen",
        options={
            "base_url": f"{server.url}/v1",
            "api_key": "req-key-9",
            "headers": {"X-Team": "search"},
        },
    )
    result = get_provider("openai_compatible").generate(request)
    assert result.text == "from vllm" and result.provider == "openai_compatible"
    assert server.seen[0].headers["Authorization"] == "Bearer req-key-9"
    assert server.seen[0].headers["X-Team"] == "search"


def test_openai_compatible_uses_the_configured_base_url(server, settings):
    settings.OPENAI_COMPATIBLE_BASE_URL = f"{server.url}/v1"
    server.reply(Reply(200, openai_chat("configured")))
    assert get_provider("openai_compatible").generate(chat()).text == "configured"


def test_openai_compatible_presets_carry_their_keys(settings, monkeypatch):
    from sop_llm.providers import openai_compatible

    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("routed")))
        monkeypatch.setitem(
            openai_compatible.PRESETS, "openrouter", (f"{fake.url}/api/v1", "OPENROUTER_API_KEY")
        )
        settings.OPENROUTER_API_KEY = "or-key-1234"
        get_provider("openai_compatible").generate(chat(options={"preset": "openrouter"}))
        assert fake.seen[0].path == "/api/v1/chat/completions"
        assert fake.seen[0].headers["Authorization"] == "Bearer or-key-1234"


def test_openai_compatible_refuses_a_private_base_url_from_a_caller(server, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ProviderError) as caught:
        get_provider("openai_compatible").generate(chat(options={"base_url": server.url}))
    assert caught.value.code == "unsafe_url" and not server.seen


@pytest.fixture
def anthropic_at(server, settings):
    settings.ANTHROPIC_BASE_URL = server.url
    settings.ANTHROPIC_API_KEY = "sk-ant-test-secret-456"
    return server


def test_anthropic_maps_the_system_prompt_and_returns_usage(anthropic_at):
    anthropic_at.reply(Reply(200, anthropic_message("Hello there")))
    result = get_provider("anthropic").generate(chat(model="claude-test-model"))
    assert result.text == "Hello there" and result.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (21, 7)
    sent = anthropic_at.seen[0]
    assert sent.path == "/v1/messages"
    assert "sk-ant-test-secret-456" in (
        sent.headers.get("x-api-key", "") + sent.headers.get("authorization", "")
    )
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [{"role": "user", "content": "Say hi"}]


def test_anthropic_structured_output_is_forced_tool_use(anthropic_at):
    anthropic_at.reply(Reply(200, anthropic_message(tool_input={"answer": "yes"})))
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    result = get_provider("anthropic").generate(
        chat(model="claude-x", response_format=ResponseFormat("json_schema", schema))
    )
    assert result.parsed == {"answer": "yes"} and result.text == '{"answer": "yes"}'
    sent = anthropic_at.seen[0].body
    assert sent["tools"][0]["input_schema"] == schema
    assert sent["tool_choice"] == {"type": "tool", "name": "answer"}


@pytest.mark.parametrize(
    "status,kind,code,retryable",
    [
        (401, "authentication_error", "auth", False),
        (400, "invalid_request_error", "bad_request", False),
        (429, "rate_limit_error", "rate_limited", True),
        (529, "overloaded_error", "server_error", True),
        (500, "api_error", "server_error", True),
    ],
)
def test_anthropic_errors_are_classified(anthropic_at, status, kind, code, retryable):
    anthropic_at.reply(anthropic_error(status, kind, "remote detail", {"retry-after": "3"}))
    with pytest.raises(ProviderError) as caught:
        get_provider("anthropic").generate(chat(model="claude-x"))
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert "remote detail" in caught.value.message
    assert len(anthropic_at.seen) == 1  # the SDK's own retries are off


def test_custom_fills_the_body_template_and_follows_the_response_path(server):
    server.reply(Reply(200, {"data": {"outputs": [{"answer": "forty-two"}]}, "tokens": 3}))
    options = {
        "url": f"{server.url}/generate",
        "headers": {"X-Key": "custom-secret-777"},
        "body_template": {
            "input": "{{prompt}}",
            "cfg": {"n": "{{max_tokens}}"},
            "note": "model={{model}}",
        },
        "response_path": "data.outputs.0.answer",
        "completion_tokens_path": "tokens",
    }
    request = GenerateRequest(
        model="my-llm", prompt="What is 6x7?", options=options, params=SamplingParams(max_tokens=16)
    )
    result = get_provider("custom").generate(request)
    assert result.text == "forty-two" and result.usage.completion_tokens == 3
    assert server.seen[0].body == {
        "input": "What is 6x7?",
        "cfg": {"n": 16},
        "note": "model=my-llm",
    }


def test_custom_says_when_the_response_path_finds_nothing(server):
    server.reply(Reply(200, {"other": 1}))
    request = GenerateRequest(
        model="m", prompt="x", options={"url": f"{server.url}/g", "response_path": "data.text"}
    )
    with pytest.raises(ProviderError, match="no value at response_path 'data.text'"):
        get_provider("custom").generate(request)
