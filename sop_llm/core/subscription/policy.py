"""What every wait on a subscription shares, whichever flavour: how long Redis has to answer a
step, when silence is worth a ping, and the one error a lost Redis raises."""

import contextlib
import time

import redis

from sop_llm.core.redis import SOCKET_TIMEOUT_SECONDS

# A subscription hears nothing from a Redis that stopped answering (silence is normal), so
# after this long with nothing heard the wait pings Redis, bounded like any other step.
SILENCE_CHECK_SECONDS = 3.0
# Refused, dropped, or no answer in time (asyncio's TimeoutError is an OSError).
LOST = (redis.ConnectionError, redis.TimeoutError, OSError)


class RedisLost(redis.ConnectionError):
    """Redis was lost while a subscription waited on it: a ConnectionError, so a 503."""


def lost(exc: BaseException, what: str) -> RedisLost:
    if isinstance(exc, RedisLost):
        return exc
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return RedisLost(f"Redis did not answer {what} within {SOCKET_TIMEOUT_SECONDS}s")
    return RedisLost(f"Redis was lost during {what}: {exc!r:.200}")


@contextlib.contextmanager
def one_error(what: str):
    """A Redis lost inside the block raises RedisLost, whatever redis-py called it."""
    try:
        yield
    except RedisLost:
        raise
    except LOST as exc:
        raise lost(exc, what) from exc


class Clock:
    """One wait's clock: its deadline, and when it last heard anything (a message, a pong)."""

    def __init__(self, timeout: float):
        self.heard_at = time.monotonic()
        self.deadline = self.heard_at + timeout

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def step(self) -> float:
        """How long to listen before looking again: until the deadline or the next ping."""
        ping_in = self.heard_at + SILENCE_CHECK_SECONDS - time.monotonic()
        return max(0.0, min(self.left(), ping_in))

    def heard(self) -> None:
        self.heard_at = time.monotonic()

    def ping_due(self) -> bool:
        return time.monotonic() - self.heard_at >= SILENCE_CHECK_SECONDS
