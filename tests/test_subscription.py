"""sop_llm.core.subscription, both flavours, on a Redis of the test's own: subscribe, read the
state, then wait. Nothing published between the subscribe and the read is lost, a silent
subscription pings Redis, and a Redis lost at any step raises the one error (RedisLost, a
redis.ConnectionError) within the bound, never a hang."""

import asyncio
import json
import signal
import time
from dataclasses import dataclass

import pytest
import redis

from sop_llm.core.redis import get_redis
from sop_llm.core.subscription import BlockingSubscription, RedisLost, Subscription, policy

CHANNEL, KEY = "test:subscription:channel", "test:subscription:state"
FLAVOURS = ["async", "blocking"]
QUICK_SILENCE_SECONDS = 0.2
# A lost Redis is heard at the next ping at the latest, which has the socket timeout to answer
# (and a shared, loaded machine some slack): far short of the wait's own WAIT_SECONDS.
BOUND_SECONDS = QUICK_SILENCE_SECONDS + policy.SOCKET_TIMEOUT_SECONDS + 2.0
WAIT_SECONDS = 30.0


@pytest.fixture(autouse=True)
def quick_silence(monkeypatch):
    monkeypatch.setattr(policy, "SILENCE_CHECK_SECONDS", QUICK_SILENCE_SECONDS)


@dataclass
class Outcome:
    state: str | None
    messages: list[dict]
    error: RedisLost | None
    seconds: float  # the wait's, after the read


def _publish(n: int) -> None:
    get_redis().publish(CHANNEL, json.dumps({"n": n}))


def _blocking(between, before_wait, timeout: float) -> Outcome:
    with BlockingSubscription([CHANNEL]) as sub:
        between()
        state = sub.read(lambda: get_redis().get(KEY), "a read")
        before_wait()
        started, messages, error = time.monotonic(), [], None
        try:
            messages.extend(sub.messages(timeout))
        except RedisLost as exc:
            error = exc
        return Outcome(state, messages, error, time.monotonic() - started)


def _async(between, before_wait, timeout: float) -> Outcome:
    async def scenario() -> Outcome:
        async with Subscription([CHANNEL]) as sub:
            between()
            state = await sub.read(sub.client.get(KEY), "a read")
            before_wait()
            started, messages, error = time.monotonic(), [], None
            try:
                messages.extend([message async for message in sub.messages(timeout)])
            except RedisLost as exc:
                error = exc
            return Outcome(state, messages, error, time.monotonic() - started)

    return asyncio.run(scenario())


def _wait(flavour: str, *, between=lambda: None, before_wait=lambda: None, timeout: float):
    return (_async if flavour == "async" else _blocking)(between, before_wait, timeout)


def _pings(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def _killed(server) -> None:
    server.kill()
    server.wait()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_message_published_between_the_subscribe_and_the_read_is_not_lost(
    flavour, pausable_redis
):
    outcome = _wait(flavour, between=lambda: _publish(1), timeout=1.0)
    assert outcome.state is None  # the read saw nothing: only the subscription has it
    assert outcome.messages == [{"n": 1}]
    assert outcome.error is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_silent_subscription_pings_redis_and_waits_on(flavour, pausable_redis):
    before = _pings(pausable_redis.url)
    outcome = _wait(flavour, timeout=1.0)
    assert outcome.messages == [] and outcome.error is None
    assert outcome.seconds >= 1.0  # the whole wait, not cut short by its pings
    assert _pings(pausable_redis.url) - before >= 3  # one every QUICK_SILENCE_SECONDS


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_redis_that_stops_answering_raises_the_one_error_within_the_bound(
    flavour, pausable_redis
):
    stop = lambda: pausable_redis.send_signal(signal.SIGSTOP)  # noqa: E731
    outcome = _wait(flavour, before_wait=stop, timeout=WAIT_SECONDS)
    assert type(outcome.error) is RedisLost, outcome
    assert "did not answer a ping" in str(outcome.error)
    assert outcome.seconds < BOUND_SECONDS


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_killed_redis_raises_the_one_error_within_the_bound(flavour, pausable_redis):
    outcome = _wait(flavour, before_wait=lambda: _killed(pausable_redis), timeout=WAIT_SECONDS)
    assert type(outcome.error) is RedisLost, outcome
    assert isinstance(outcome.error, redis.ConnectionError)  # the views' 503
    assert outcome.seconds < BOUND_SECONDS


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_subscribing_to_a_redis_that_is_down_raises_the_one_error_at_once(flavour, pausable_redis):
    _killed(pausable_redis)
    started = time.monotonic()
    with pytest.raises(RedisLost, match="a subscribe"):
        _wait(flavour, timeout=WAIT_SECONDS)
    assert time.monotonic() - started < BOUND_SECONDS
