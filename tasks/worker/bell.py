"""The lane's bell: a slot scheduler with free slots hears a newly queued task at once.

Without it a scheduler that is busy generating would find new tasks only at its next poll, and
each would wait up to a poll interval before its prefill joins the batch (measured: most of the
extra time to first token with 4 concurrent requests). The bell is a hint, never the only path:
a missed ring (a reconnect) is covered by the scheduler's slower poll.
"""

import logging
import threading
import time

import redis

from sop_llm.core import keys
from sop_llm.core.redis import get_pubsub_redis

log = logging.getLogger(__name__)
RESUBSCRIBE_SECONDS = 1.0
IDLE_CHECK_SECONDS = 0.5  # how soon a bell with no scheduler attached lets go of Redis


class LaneBell:
    """One listener thread per lane and process while any scheduler is attached; a ring sets
    every attached scheduler's event."""

    def __init__(self, lane: str) -> None:
        self.lane = lane
        self._waiters: set[threading.Event] = set()
        self._lock = threading.Lock()
        self._listening = False
        self._subscribed = threading.Event()

    def attach(self, event: threading.Event) -> None:
        with self._lock:
            self._waiters.add(event)
            start, self._listening = not self._listening, True
        if start:
            self._subscribed.clear()
            threading.Thread(target=self._listen, name="lane-bell", daemon=True).start()
        self._subscribed.wait(timeout=2)

    def detach(self, event: threading.Event) -> None:
        with self._lock:
            self._waiters.discard(event)

    def _listen(self) -> None:
        """Returns only once `_still_wanted` said no (and so marked the bell not listening)."""
        while True:
            try:
                return self._subscribe_and_ring()
            except redis.RedisError as exc:
                log.warning("lane bell lost Redis (%s); resubscribing", exc)
                time.sleep(RESUBSCRIBE_SECONDS)
                if not self._still_wanted():
                    return

    def _still_wanted(self) -> bool:
        """Decided under the lock that `attach` takes, so a scheduler attaching now either
        keeps this thread or starts the next one."""
        with self._lock:
            self._listening = bool(self._waiters)
            return self._listening

    def _subscribe_and_ring(self) -> None:
        pubsub = get_pubsub_redis().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(keys.pubsub_lane_queued(self.lane))
            self._subscribed.set()
            while self._still_wanted():
                if pubsub.get_message(timeout=IDLE_CHECK_SECONDS) is not None:
                    self._ring()
        finally:
            pubsub.close()

    def _ring(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for event in waiters:
            event.set()


_bells: dict[str, LaneBell] = {}
_bells_lock = threading.Lock()


def lane_bell(lane: str) -> LaneBell:
    with _bells_lock:
        return _bells.setdefault(lane, LaneBell(lane))
