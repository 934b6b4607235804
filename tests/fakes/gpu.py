"""GPU readings for a machine without a GPU, behind the same seam NVML uses (GPU_READER).

The readings come from the FAKE_GPU environment variable (JSON), so worker subprocesses see
the same GPU as the test that started them.
"""

import json
import os

from models_gpu.vram import GpuStatus

DEFAULT = {
    "name": "Fake RTX 4090",
    "memory_total_mb": 24564,
    "memory_used_mb": 1000,
    "memory_free_mb": 23564,
    "utilization_percent": 3,
    "temperature_c": 40,
}


class FakeGpuReader:
    def read(self, index: int) -> GpuStatus:
        reading = {**DEFAULT, **json.loads(os.environ.get("FAKE_GPU", "{}"))}
        return GpuStatus(available=True, index=index, **reading)
