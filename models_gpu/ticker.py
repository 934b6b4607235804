"""GPU stats every 2 s, from one place: the GPU worker that holds the GPU lock."""

import logging
import threading

import redis

from models_gpu.guard import gpu_guard
from models_gpu.vram import gpu_status
from sop_llm.core.telemetry.events import publish

log = logging.getLogger(__name__)
TICK_SECONDS = 2.0


class GpuTicker:
    def __init__(self, interval: float = TICK_SECONDS):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-ticker", daemon=True)

    def start(self) -> "GpuTicker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                publish("gpu.stats", **gpu_status(fresh=True).to_dict())  # also refreshes the cache
                gpu_guard().publish_status()  # slots busy/free, within a tick
            except redis.RedisError as exc:
                log.warning("gpu stats not published: %s", exc)
            except Exception:
                log.exception("gpu stats failed")
            self._stop.wait(self.interval)
