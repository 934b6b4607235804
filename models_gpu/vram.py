"""GPU readings over NVML, cached in `system:gpu` for a few seconds.

The reader is a seam (settings.GPU_READER): NVML in production; tests on this GPU-less machine
plug in readings of their own there, and everything above it runs for real. One reader per
process (`_reader`) owns NVML: it initialises it once, on the first reading, serialises the
readings (the ticker thread and a model load may ask at once) and shuts it down at exit. The
ticker refreshes the cache every 2 s; a load asks the same reader for a fresh reading.
"""

import atexit
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import import_module

import redis
from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.redis import get_redis

log = logging.getLogger(__name__)
CACHE_TTL_SECONDS = 5
MB = 1024 * 1024


@dataclass
class GpuStatus:
    available: bool
    index: int
    reason: str | None = None  # why there is no GPU, when there is none
    name: str | None = None
    memory_total_mb: int | None = None
    memory_used_mb: int | None = None
    memory_free_mb: int | None = None
    utilization_percent: int | None = None
    temperature_c: int | None = None
    processes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class NvmlReader:
    def __init__(self):
        self._lock = threading.Lock()
        self._nvml = None  # the pynvml module, once nvmlInit succeeded
        self._unavailable: str | None = None  # why there is no NVML here (not retried)

    def read(self, index: int) -> GpuStatus:
        with self._lock:
            nvml = self._session()
            if nvml is None:
                return GpuStatus(available=False, index=index, reason=self._unavailable)
            try:
                return self._read(nvml, index)
            except nvml.NVMLError as exc:
                return GpuStatus(available=False, index=index, reason=f"NVML error: {exc}")

    def _session(self):
        """pynvml, initialised once; None when there is no NVML (a CPU-only machine: a driver
        does not appear while the process runs, so the answer is kept)."""
        if self._nvml is not None or self._unavailable is not None:
            return self._nvml
        try:
            import pynvml
        except ImportError:
            self._unavailable = "nvidia-ml-py not installed"
            return None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:  # no driver / no library: a normal CPU-only machine
            self._unavailable = f"no GPU (NVML: {exc})"
            return None
        self._nvml = pynvml
        atexit.register(self.shutdown)
        return pynvml

    def shutdown(self) -> None:
        with self._lock:
            nvml, self._nvml = self._nvml, None
            self._unavailable = "NVML was shut down"
            if nvml is not None:
                nvml.nvmlShutdown()

    @staticmethod
    def _read(nvml, index: int) -> GpuStatus:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
        processes = [
            {"pid": p.pid, "used_mb": (p.usedGpuMemory or 0) // MB}
            for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        ]
        return GpuStatus(
            available=True,
            index=index,
            name=name.decode() if isinstance(name, bytes) else name,
            memory_total_mb=memory.total // MB,
            memory_used_mb=memory.used // MB,
            memory_free_mb=memory.free // MB,
            utilization_percent=nvml.nvmlDeviceGetUtilizationRates(handle).gpu,
            temperature_c=nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
            processes=processes,
        )


@cache
def _reader(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)()


def gpu_read() -> GpuStatus:
    """A fresh reading (no cache): what the guard uses before a load."""
    return _reader(settings.GPU_READER).read(settings.GPU_INDEX)


def gpu_status(*, fresh: bool = False) -> GpuStatus:
    """Cached for CACHE_TTL_SECONDS across processes; a Redis hiccup just means a fresh read."""
    key = keys.system_gpu()
    try:
        cached = None if fresh else get_redis().get(key)
        if cached:
            return GpuStatus(**json.loads(cached))
        status = gpu_read()
        get_redis().set(key, json.dumps(status.to_dict()), ex=CACHE_TTL_SECONDS)
        return status
    except redis.RedisError as exc:
        log.warning("GPU status cache unavailable: %s", exc)
        return gpu_read()
