"""A thread's flavour: a `BlockingSubscription` on a connection of its own (the command line
waits so; the web waits on its event loop, aio.py)."""

import json
import time
from collections import deque
from collections.abc import Callable, Iterator

import redis

from sop_llm.core.redis import get_pubsub_redis, get_redis
from sop_llm.core.subscription import policy


class BlockingSubscription:
    """Messages on `channels` (decoded JSON) from the moment `with` returns, Redis having
    confirmed the subscribe: read the state then (`read`), and wait (`messages`)."""

    def __init__(self, channels: list[str]):
        self.channels = list(channels)
        self.pubsub: redis.client.PubSub | None = None
        self.early: deque[dict] = deque()  # published while the subscribe was being confirmed

    def __enter__(self) -> "BlockingSubscription":
        self.pubsub = get_pubsub_redis().pubsub()
        try:
            with policy.one_error("a subscribe"):
                self.pubsub.subscribe(*self.channels)
                self._confirmed()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _confirmed(self) -> None:
        """Returns once Redis has confirmed every channel: no later publish is missed."""
        unconfirmed = set(self.channels)
        deadline = time.monotonic() + policy.SOCKET_TIMEOUT_SECONDS
        while unconfirmed:
            left = deadline - time.monotonic()
            message = self.pubsub.get_message(timeout=left) if left > 0 else None
            if message is None:
                raise redis.TimeoutError("no subscribe confirmation")
            if message["type"] == "subscribe":
                unconfirmed.discard(message["channel"])
            elif message["type"] == "message":
                self.early.append(json.loads(message["data"]))

    def __exit__(self, *exc) -> None:
        pubsub, self.pubsub = self.pubsub, None
        if pubsub is not None:
            pubsub.close()  # no command: it only drops the connection

    def read(self, fetch: Callable[[], object], what: str):
        """`fetch()` of the state (on a client whose every command is bounded)."""
        with policy.one_error(what):
            return fetch()

    def messages(self, timeout: float) -> Iterator[dict]:
        """Messages until `timeout` seconds pass (then the iterator simply ends)."""
        clock = policy.Clock(timeout)
        while clock.left() > 0:
            message = self.early.popleft() if self.early else self._next(clock.step())
            if message is not None:
                clock.heard()
                yield message
            elif clock.ping_due():
                with policy.one_error("a ping"):
                    get_redis().ping()
                clock.heard()

    def first(self, timeout: float) -> dict | None:
        """The first message within `timeout` seconds, or None."""
        return next(self.messages(timeout), None)

    def _next(self, timeout: float) -> dict | None:
        with policy.one_error("a subscription read"):
            message = self.pubsub.get_message(timeout=timeout)
        if message is None or message["type"] != "message":
            return None  # nothing, or a reply that is no message (an unsubscribe)
        return json.loads(message["data"])
