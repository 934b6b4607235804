"""The GPU lock `gpu:lock:{GPU_ID}`: a lease its holder renews every heartbeat.

Liveness is judged by the renewals alone, so it works across hosts and containers: a holder
that stops renewing (killed, frozen, cut off from Redis) loses the GPU when the lease runs out,
LEASE_BEATS heartbeats later, wherever it ran. A holder whose pid is provably gone on this very
host loses it at once. The lease is renewed by a thread of its own from the moment it is
claimed, so a long start-up (recovery) or a long generation never lets it lapse.
"""

import json
import logging
import os
import threading
import time

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.procs import hostname, provably_dead
from sop_llm.core.redis import get_redis
from sop_llm.providers.errors import ProviderError

log = logging.getLogger(__name__)
LEASE_BEATS = 3
LEASE_MIN_SECONDS = 3.0
WAIT_LOG_EVERY_SECONDS = 10
CLAIM_POLL_SECONDS = 0.5


class GpuBusy(ProviderError):
    pass


def lease_ms() -> int:
    return int(1000 * max(LEASE_MIN_SECONDS, LEASE_BEATS * settings.WORKER_HEARTBEAT_SECONDS))


class GpuLease:
    def __init__(self, gpu_id: str):
        self.gpu_id = gpu_id
        self.owner: str | None = None
        self._token = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self, *, owner: str, wait: bool, timeout: float | None = None) -> None:
        if self.owner is not None:
            return
        token = json.dumps({"owner": owner, "pid": os.getpid(), "host": hostname()})
        key, started, logged = keys.gpu_lock(self.gpu_id), time.monotonic(), None
        while not get_redis().set(key, token, nx=True, px=lease_ms()):
            holder = get_redis().get(key)
            if holder and provably_dead(holder):
                log.warning("GPU %s: breaking the lock of a dead holder %s", self.gpu_id, holder)
                delete_if(key, holder)
                continue
            waited = time.monotonic() - started
            if not wait or (timeout is not None and waited >= timeout):
                raise GpuBusy(
                    f"GPU {self.gpu_id} is held by another worker: {holder}",
                    code="gpu_busy",
                    retryable=True,
                    provider="local",
                )
            if logged is None or waited - logged >= WAIT_LOG_EVERY_SECONDS:
                log.warning("GPU %s is held by %s; waiting for it", self.gpu_id, holder)
                logged = waited
            time.sleep(CLAIM_POLL_SECONDS)
        self.owner, self._token = owner, token
        self._start_renewing()
        log.info("GPU %s claimed by %s", self.gpu_id, owner)

    def renew(self) -> None:
        if self.owner is None:
            return
        outcome = get_redis().eval(_RENEW, 1, keys.gpu_lock(self.gpu_id), self._token, lease_ms())
        if outcome == 2:  # it lapsed (Redis lost it, or this process froze past the lease)
            log.error("GPU %s lock had lapsed; reclaimed", self.gpu_id)
        elif outcome == 0:
            holder = get_redis().get(keys.gpu_lock(self.gpu_id))
            log.error("GPU %s lock lapsed and is now held by %s", self.gpu_id, holder)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.owner is not None:
            delete_if(keys.gpu_lock(self.gpu_id), self._token)
            self.owner = None

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="gpu-lease", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
            try:
                self.renew()
            except Exception as exc:  # a Redis blip: the next beat tries again
                log.warning("GPU %s lease not renewed: %s", self.gpu_id, exc)


# 1: renewed; 2: had lapsed, taken back; 0: another holder has it now.
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not held then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""
_DELETE_IF = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


def delete_if(key: str, value: str) -> None:
    get_redis().eval(_DELETE_IF, 1, key, value)
