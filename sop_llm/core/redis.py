"""Every Redis client of the service is built here, with one timeout policy.

A command either answers within SOCKET_TIMEOUT_SECONDS or fails: a hung Redis is a 503 in
under a second on every request path, never a hanging request. A refused or dropped connection
is retried once (a pooled connection may predate a Redis restart); a timeout is not, so the
bound holds. Subscriptions have no read timeout (silence is normal) but the same connect bound.

With REDIS_SENTINELS set, every client is a Sentinel-managed one (redis-py's `master_for`): a
new connection asks the Sentinels where the master is now, and a connection to a master that
died or was demoted fails (ConnectionError, a 503) and is replaced by one to the new master.
Nothing has to restart after a failover; requests in the gap get the usual 503.
"""

import asyncio
import functools
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from sop_llm.core.redis_connection import SentinelConnection

CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 0.8
# Each Sentinel asked for the master answers within this or the next one is asked.
SENTINEL_TIMEOUT_SECONDS = 0.5


def _retry() -> Retry:
    return Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


def _target() -> tuple:
    """What the clients connect to; part of every cache key so a changed setting is seen."""
    if settings.REDIS_SENTINELS:
        sentinels = tuple(tuple(pair) for pair in settings.REDIS_SENTINELS)
        return ("sentinel", settings.REDIS_SENTINEL_MASTER, sentinels)
    return ("url", settings.REDIS_URL)


def _sentinel_kwargs() -> dict:
    return {
        "password": settings.REDIS_SENTINEL_PASSWORD,
        "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
    }


@functools.cache
def _sentinel(target: tuple) -> Sentinel:
    return Sentinel(list(target[2]), sentinel_kwargs=_sentinel_kwargs())


def _build(target: tuple, **kwargs) -> redis.Redis:
    """A sync client of the master: through the Sentinels, or from REDIS_URL."""
    if target[0] == "sentinel":
        auth = {"password": settings.REDIS_PASSWORD, "db": settings.REDIS_DB}
        return _sentinel(target).master_for(
            target[1], connection_class=SentinelConnection, **auth, **kwargs
        )
    return redis.Redis.from_url(target[1], **kwargs)


@functools.cache
def _client(target: tuple, decode: bool) -> redis.Redis:
    return _build(
        target,
        decode_responses=decode,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=_retry(),
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    """Text client (str in, str out) for the service's own keys."""
    return _client(_target(), True)


def get_rq_redis() -> redis.Redis:
    """Bytes client, as rq requires (it pickles job data)."""
    return _client(_target(), False)


def new_rq_redis() -> redis.Redis:
    """A bytes client of its own, for rq objects that retune their connection's timeouts
    (building a Worker raises the pool's socket timeout to its dequeue timeout)."""
    return _build(_target(), socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, retry=_retry())


def redis_ping(timeout: float = 1.0) -> str | None:
    """None when Redis answers within `timeout`, else the reason it did not."""
    probe = _build(_target(), socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        probe.ping()
        return None
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        probe.close()


def get_pubsub_redis() -> redis.Redis:
    """For long-lived subscriptions: no read timeout (silence is normal), keepalive on."""
    return _build(
        _target(),
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_keepalive=True,
        health_check_interval=30,
    )


def get_async_redis(*, health_check_interval: int = 30) -> aioredis.Redis:
    """A new asyncio client (the caller closes it) for waits and WebSocket subscriptions.
    A connection shared by a reader task and senders needs `health_check_interval=0`: a
    health check reads its PONG on the sender's side, beside the reader."""
    options = {
        "decode_responses": True,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_keepalive": True,
        "health_check_interval": health_check_interval,
    }
    target = _target()
    if target[0] == "sentinel":
        auth = {"password": settings.REDIS_PASSWORD, "db": settings.REDIS_DB}
        return _async_sentinel(target).master_for(target[1], **auth, **options)
    return aioredis.from_url(target[1], **options)


# asyncio connections belong to the loop that made them: one Sentinel set per loop.
_async_sentinels: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = (
    weakref.WeakKeyDictionary()
)


def _async_sentinel(target: tuple) -> AsyncSentinel:
    per_loop = _async_sentinels.setdefault(asyncio.get_running_loop(), {})
    if target not in per_loop:
        per_loop[target] = AsyncSentinel(list(target[2]), sentinel_kwargs=_sentinel_kwargs())
    return per_loop[target]


def describe_target() -> str:
    """Where the service's Redis is, for banners and logs (no password)."""
    target = _target()
    if target[0] == "sentinel":
        where = ",".join(f"{host}:{port}" for host, port in target[2])
        return f"Sentinel master {target[1]!r} via {where}"
    return target[1].split("@")[-1]
