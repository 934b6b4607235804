"""The one Redis connection of a process (a pool, shared by every caller)."""

import functools

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

# Short timeouts: a Redis outage must turn into a quick 503, never a hanging request.
CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 2.0


@functools.cache
def _client(url: str, decode: bool) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=decode,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    """Text client (str in, str out) for the service's own keys."""
    return _client(settings.REDIS_URL, True)


def get_rq_redis() -> redis.Redis:
    """Bytes client, as rq requires (it pickles job data)."""
    return _client(settings.REDIS_URL, False)


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
