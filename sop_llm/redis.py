"""Every Redis client of the service is built here, with one timeout policy.

A command either answers within SOCKET_TIMEOUT_SECONDS or fails: a hung Redis is a 503 in
under a second on every request path, never a hanging request. A refused or dropped connection
is retried once (a pooled connection may predate a Redis restart); a timeout is not, so the
bound holds. Subscriptions have no read timeout (silence is normal) but the same connect bound.
"""

import functools

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 0.8


def _retry() -> Retry:
    return Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


@functools.cache
def _client(url: str, decode: bool) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=_retry(),
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    """Text client (str in, str out) for the service's own keys."""
    return _client(settings.REDIS_URL, True)


def get_rq_redis() -> redis.Redis:
    """Bytes client, as rq requires (it pickles job data)."""
    return _client(settings.REDIS_URL, False)


def new_rq_redis() -> redis.Redis:
    """A bytes client of its own, for rq objects that retune their connection's timeouts
    (building a Worker raises the pool's socket timeout to its dequeue timeout)."""
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, retry=_retry()
    )


def redis_ping(timeout: float = 1.0) -> str | None:
    """None when Redis answers within `timeout`, else the reason it did not."""
    probe = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        probe.ping()
        return None
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        probe.close()


def get_pubsub_redis() -> redis.Redis:
    """For long-lived subscriptions: no read timeout (silence is normal), keepalive on."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=30,
    )


def get_async_redis() -> aioredis.Redis:
    """A new asyncio client (the caller closes it) for waits and WebSocket subscriptions."""
    return aioredis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=30,
    )
