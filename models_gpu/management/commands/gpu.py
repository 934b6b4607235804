from models_gpu.vram import gpu_status
from sop_llm.management.base import OpsCommand


class Command(OpsCommand):
    help = "GPU readings from NVML (GPU_INDEX), or why there is no GPU."

    def handle(self, *args, **options):
        self.emit(gpu_status(fresh=True).to_dict(), _human)


def _human(g: dict) -> list[str]:
    if not g["available"]:
        return [f"GPU {g['index']}: {g['reason']}"]
    lines = [
        f"GPU {g['index']}: {g['name']}",
        f"  memory       {g['memory_used_mb']} / {g['memory_total_mb']} MB "
        f"({g['memory_free_mb']} MB free)",
        f"  utilization  {g['utilization_percent']}%",
        f"  temperature  {g['temperature_c']} C",
    ]
    lines += [f"  process      pid {p['pid']} {p['used_mb']} MB" for p in g["processes"]]
    return lines
