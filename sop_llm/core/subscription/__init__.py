"""Subscribe, read, then wait: the one way the service waits on Redis pub/sub.

Subscribing first and reading the state second means nothing published in between is lost: it
waits in the subscription. Every Redis step is bounded (SOCKET_TIMEOUT_SECONDS), a subscription
silent for SILENCE_CHECK_SECONDS pings Redis, and a Redis lost at any step (refused, dropped,
not answering) raises one error, `RedisLost`: a redis.ConnectionError, so every view answers it
with the same 503. Two flavours share that policy (policy.py): `Subscription` for the event
loop, on the process's one subscribed connection (hub.py), and `BlockingSubscription` for a
thread, on a connection of its own.
"""

from sop_llm.core.subscription.aio import Subscription, bounded
from sop_llm.core.subscription.blocking import BlockingSubscription
from sop_llm.core.subscription.policy import SILENCE_CHECK_SECONDS, RedisLost

__all__ = ["SILENCE_CHECK_SECONDS", "BlockingSubscription", "RedisLost", "Subscription", "bounded"]
