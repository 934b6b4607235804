"""The fallback strategy: bounded retries for what is retryable, then the next target."""

import pytest

from sop_llm.providers.fallback import (
    AllAttemptsFailed,
    RetryPolicy,
    Target,
    generate_with_fallback,
)
from sop_llm.providers.types import GenerateRequest, ResponseFormat, SamplingParams
from tests.fakes.servers import FakeServer, Reply, openai_chat, openai_error

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


class Clock:
    def __init__(self):
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def policy():
    return RetryPolicy(max_retries=2, backoff_seconds=0.5, retry_after_cap=30, sleep=Clock().sleep)


@pytest.fixture
def primary(settings):
    with FakeServer() as fake:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = f"{fake.url}/v1", "sk-primary-key-1"
        yield fake


@pytest.fixture
def secondary():
    with FakeServer() as fake:
        yield fake


def targets(secondary):
    return [
        Target("openai", "gpt-4o-mini"),
        Target("openai_compatible", "llama-3", {"base_url": f"{secondary.url}/v1"}),
    ]


def request(**kw):
    return GenerateRequest(model="ignored", prompt="hi", params=SamplingParams(max_tokens=8), **kw)


def test_a_429_is_retried_after_the_remote_s_retry_after_then_succeeds(primary, secondary, policy):
    primary.reply(
        Reply(429, {"error": {"message": "busy"}}, {"Retry-After": "2"}),
        Reply(200, openai_chat("second time lucky")),
    )
    result, attempts = generate_with_fallback(
        targets=targets(secondary), request=request(), policy=policy
    )
    assert result.text == "second time lucky" and result.provider == "openai"
    assert [(a.outcome, a.error_code, a.try_number) for a in attempts] == [
        ("error", "rate_limited", 1),
        ("ok", None, 2),
    ]
    assert policy.sleep.__self__.slept == [2.0]
    assert not secondary.seen


def test_a_500_that_persists_falls_back_to_the_next_provider(primary, secondary, policy):
    primary.reply(openai_error(500, "upstream exploded"))
    secondary.reply(Reply(200, openai_chat("from the fallback", model="llama-3")))
    result, attempts = generate_with_fallback(
        targets=targets(secondary), request=request(), policy=policy
    )
    assert result.text == "from the fallback" and result.provider == "openai_compatible"
    assert len(primary.seen) == 3  # one try + max_retries
    story = [(a.provider, a.outcome, a.error_class) for a in attempts]
    assert story == [("openai", "error", "retryable")] * 3 + [("openai_compatible", "ok", None)]
    assert all(a.duration_ms >= 0 and a.started_at > 0 for a in attempts)


def test_a_401_is_final_no_retry_straight_to_the_fallback(primary, secondary, policy):
    primary.reply(openai_error(401, "Incorrect API key provided"))
    secondary.reply(Reply(200, openai_chat("ok")))
    _, attempts = generate_with_fallback(
        targets=targets(secondary), request=request(), policy=policy
    )
    assert len(primary.seen) == 1
    assert (attempts[0].error_code, attempts[0].error_class) == ("auth", "final")
    assert policy.sleep.__self__.slept == []


def test_when_everything_fails_the_attempts_tell_the_whole_story(primary, secondary, policy):
    primary.reply(openai_error(400, "bad request"))
    secondary.reply(openai_error(503, "down for maintenance"))
    with pytest.raises(AllAttemptsFailed) as caught:
        generate_with_fallback(targets=targets(secondary), request=request(), policy=policy)
    codes = [(a.provider, a.error_code) for a in caught.value.attempts]
    assert codes == [("openai", "bad_request")] + [("openai_compatible", "server_error")] * 3
    assert caught.value.last.code == "server_error"
    assert "down for maintenance" in caught.value.attempts[-1].message


def test_an_answer_that_fails_its_schema_is_a_failed_attempt(primary, secondary, policy):
    primary.reply(Reply(200, openai_chat('{"n": "not a number"}')))
    secondary.reply(Reply(200, openai_chat('{"n": 3}')))
    result, attempts = generate_with_fallback(
        targets=targets(secondary),
        request=request(response_format=ResponseFormat("json_schema", SCHEMA)),
        policy=policy,
    )
    assert result.parsed == {"n": 3}
    assert attempts[0].error_code == "invalid_output"
    assert "schema violation at n" in attempts[0].message


def test_truncated_json_is_never_a_success(primary, secondary, policy):
    primary.reply(Reply(200, openai_chat('{"n": 1', finish_reason="length")))
    secondary.reply(Reply(200, openai_chat('{"n": 1}')))
    _, attempts = generate_with_fallback(
        targets=targets(secondary),
        request=request(response_format=ResponseFormat("json_schema", SCHEMA)),
        policy=policy,
    )
    assert attempts[0].error_code == "truncated"


def test_keys_echoed_by_a_remote_never_reach_the_attempts(primary, secondary, policy):
    primary.reply(openai_error(401, "Incorrect API key provided: sk-primary-key-1"))
    secondary.reply(openai_error(401, "bad key req-secret-xyz in header"))
    chain = [
        Target("openai", "gpt-4o-mini"),
        Target(
            "openai_compatible",
            "m",
            {"base_url": f"{secondary.url}/v1", "api_key": "req-secret-xyz"},
        ),
    ]
    with pytest.raises(AllAttemptsFailed) as caught:
        generate_with_fallback(
            targets=chain, request=request(options={"api_key": "req-secret-xyz"}), policy=policy
        )
    text = repr([a.to_dict() for a in caught.value.attempts])
    assert "sk-primary-key-1" not in text and "req-secret-xyz" not in text
    assert text.count("***") == 2


def test_a_cancelled_request_stops_retrying(primary, secondary, policy):
    primary.reply(openai_error(503, "down"))
    cancelled = request()
    cancelled.is_cancelled = lambda: len(primary.seen) >= 1  # cancelled during the first try
    with pytest.raises(AllAttemptsFailed) as caught:
        generate_with_fallback(targets=targets(secondary), request=cancelled, policy=policy)
    assert len(primary.seen) == 1 and not secondary.seen
    assert caught.value.last.code == "cancelled"
