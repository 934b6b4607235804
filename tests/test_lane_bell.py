"""The gpu lane's bell: a busy slot scheduler hears a newly queued task without polling."""

import threading

from tasks import queue
from tasks.worker.bell import LaneBell

BELL_WAIT_SECONDS = 5.0


def test_a_task_queued_on_the_gpu_lane_rings_its_bell():
    bell, heard = LaneBell("gpu"), threading.Event()
    bell.attach(heard)
    try:
        queue.wake("gpu")
        assert heard.wait(BELL_WAIT_SECONDS)
    finally:
        bell.detach(heard)


def test_a_detached_scheduler_is_not_woken():
    bell, heard, other = LaneBell("gpu"), threading.Event(), threading.Event()
    bell.attach(heard)
    bell.attach(other)
    bell.detach(heard)
    queue.wake("gpu")
    assert other.wait(BELL_WAIT_SECONDS)
    assert not heard.is_set()


class CountingEvent(threading.Event):
    def __init__(self):
        super().__init__()
        self.rings = 0

    def set(self):
        self.rings += 1
        super().set()


def test_other_lanes_do_not_ring_the_gpu_bell():
    bell, heard = LaneBell("gpu"), CountingEvent()
    bell.attach(heard)
    try:
        queue.wake("remote")
        queue.wake("remote")
        queue.wake("gpu")  # published last: when it is heard, the others would have been
        assert heard.wait(BELL_WAIT_SECONDS)
        assert heard.rings == 1
    finally:
        bell.detach(heard)
