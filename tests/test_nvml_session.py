"""NVML as a GPU process should use it (issue 26): initialised once per process, read by one
caller at a time (the ticker thread and a model load ask at once), shut down at exit. NVML itself
cannot exist on this machine: a stand-in pynvml module counts the calls behind the real reader."""

import sys
import threading
import time
import types
from collections import namedtuple

from models_gpu import vram
from models_gpu.ticker import GpuTicker

Memory = namedtuple("Memory", "total used free")
Rates = namedtuple("Rates", "gpu memory")
MB = 1024 * 1024


class NVMLError(Exception):
    pass


def stand_in_nvml() -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError, nvml.NVML_TEMPERATURE_GPU = NVMLError, 0
    nvml.calls = {"init": 0, "shutdown": 0, "inside": 0, "most_inside": 0}

    def count(name):
        nvml.calls[name] += 1

    def memory(handle):
        nvml.calls["inside"] += 1
        nvml.calls["most_inside"] = max(nvml.calls["most_inside"], nvml.calls["inside"])
        time.sleep(0.001)  # a driver call takes a while: overlapping readers would show here
        nvml.calls["inside"] -= 1
        return Memory(80_000 * MB, 1_000 * MB, 79_000 * MB)

    nvml.nvmlInit = lambda: count("init")
    nvml.nvmlShutdown = lambda: count("shutdown")
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetMemoryInfo = memory
    nvml.nvmlDeviceGetName = lambda handle: b"Stand-in H200"
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda handle: []
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: Rates(5, 1)
    nvml.nvmlDeviceGetTemperature = lambda handle, sensor: 40
    return nvml


def test_nvml_is_initialised_once_and_read_by_one_caller_at_a_time(settings, monkeypatch):
    nvml = stand_in_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    settings.GPU_READER = "models_gpu.vram.NvmlReader"
    vram._reader.cache_clear()
    try:
        ticker = GpuTicker(interval=0.005).start()
        loads = [threading.Thread(target=lambda: [vram.gpu_read() for _ in range(40)])]
        loads += [threading.Thread(target=lambda: [vram.gpu_read() for _ in range(40)])]
        for thread in loads:
            thread.start()
        for thread in loads:
            thread.join()
        ticker.stop()
        reading = vram.gpu_read()
        assert reading.available and reading.name == "Stand-in H200"
        assert nvml.calls["init"] == 1 and nvml.calls["shutdown"] == 0
        assert nvml.calls["most_inside"] == 1
        vram._reader(settings.GPU_READER).shutdown()  # what atexit runs
        assert nvml.calls["shutdown"] == 1
    finally:
        vram._reader.cache_clear()


def test_a_machine_without_nvml_is_asked_once_and_keeps_saying_why(monkeypatch):
    nvml = stand_in_nvml()

    def no_driver():
        nvml.calls["init"] += 1
        raise NVMLError("Driver Not Loaded")

    nvml.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    reader = vram.NvmlReader()
    readings = [reader.read(0) for _ in range(5)]
    assert nvml.calls["init"] == 1
    assert all(not r.available and "Driver Not Loaded" in r.reason for r in readings)
