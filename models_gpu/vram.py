"""GPU readings over NVML, cached in `system:gpu` for a few seconds.

The reader is a seam (settings.GPU_READER): NVML in production; tests on this GPU-less machine
plug in readings of their own there, and everything above it runs for real.
"""

import json
import logging
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import import_module

import redis
from django.conf import settings

from sop_llm import keys
from sop_llm.redis import get_redis

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
    def read(self, index: int) -> GpuStatus:
        try:
            import pynvml
        except ImportError:
            return GpuStatus(available=False, index=index, reason="nvidia-ml-py not installed")
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:  # no driver / no library: a normal CPU-only machine
            return GpuStatus(available=False, index=index, reason=f"no GPU (NVML: {exc})")
        try:
            return self._read(pynvml, index)
        except pynvml.NVMLError as exc:
            return GpuStatus(available=False, index=index, reason=f"NVML error: {exc}")
        finally:
            pynvml.nvmlShutdown()

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
