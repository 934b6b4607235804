"""A worker's end does not wait out rq's read of its command channel."""

import threading
import time

from sop_llm.core.redis import get_rq_redis
from tasks.queue import rq_queue
from tasks.worker.workers import HeartbeatWorker


def test_a_worker_unsubscribes_without_waiting_out_a_read_under_way():
    worker = HeartbeatWorker([rq_queue("remote")], connection=get_rq_redis())
    worker.subscribe()
    # The reader takes the channel's replies, then starts its next read: the state a worker
    # is in when its burst ends (rq's own 60 s reads made this end wait for most of a minute).
    worker.pubsub.ping()
    time.sleep(0.2)
    started = time.monotonic()
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(timeout=5)
    assert not stopping.is_alive(), "the worker still waits for its command reader"
    assert time.monotonic() - started < 3


def test_a_burst_over_an_empty_queue_ends_at_once():
    for _ in range(5):
        worker = HeartbeatWorker([rq_queue("remote")], connection=get_rq_redis())
        started = time.monotonic()
        worker.work(burst=True, logging_level="WARNING")
        assert time.monotonic() - started < 5
