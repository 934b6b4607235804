"""What operators see: status, queue, logs, stats and Prometheus metrics, all read from Redis."""

import time

from models_gpu.services import model_status
from monitor.key_metrics import key_usage_lines
from sop_llm import __version__
from sop_llm.core import keys
from sop_llm.core.lanes import LANES, TASK_LANES
from sop_llm.core.procs import process_started_at
from sop_llm.core.redis import get_redis, redis_ping
from sop_llm.core.telemetry.logs import recent_logs
from sop_llm.core.telemetry.stats import HISTOGRAMS, stats_days, today
from tasks import queue
from tasks.batches.snapshot import batches_snapshot
from tasks.liveness import live_workers, lost_tasks
from tasks.presenters import iso
from tasks.snapshot import processing_snapshot, queue_snapshot
from tasks.webhooks import dead_letters

STARTED_AT = process_started_at()


def monitor_status(*, web: bool = True) -> dict:
    """`web`: asked of a web process, whose own start counts towards the service's uptime
    (a command line asks from outside the service)."""
    redis_error = redis_ping(timeout=0.5)
    status = {
        "version": __version__,
        "uptime_seconds": _uptime([STARTED_AT] if web else []),
        "redis": {"ok": redis_error is None, "error": redis_error},
    }
    if redis_error:
        return status
    gpu = model_status()
    workers = {lane: live_workers(lane) for lane in LANES}
    starts = [w["started_at"] for ws in workers.values() for w in ws if w.get("started_at")]
    status.update(
        uptime_seconds=_uptime(starts + ([STARTED_AT] if web else [])),
        workers=workers,
        gpu=gpu["gpu"],
        loaded_model=gpu["loaded"],
        queues={
            lane: {"pending": queue.depth(lane), "processing": list(queue.processing(lane))}
            for lane in TASK_LANES
        },
        processing=processing_snapshot(),
        today=stats_days(1)[0] | {"date": today()},
        dead_letters=len(dead_letters(limit=10_000)),
        batches=batches_snapshot(),
    )
    return status


def _uptime(starts: list[float]) -> float | None:
    """Since the longest-running live process of the service started."""
    return round(time.time() - min(starts), 1) if starts else None


def monitor_queue(limit: int = 100) -> dict:
    return queue_snapshot(limit=limit)


def monitor_logs(*, task_id: str | None, level: str | None, limit: int) -> dict:
    records = recent_logs(task_id=task_id, level=level, limit=limit)
    for record in records:
        record["at"] = iso(record["at"])
    return {"logs": records}


def monitor_stats(*, days: int) -> dict:
    return {"days": stats_days(days)}


def metrics_text() -> str:
    """Prometheus text exposition (version 0.0.4). With Redis unreachable it still answers,
    saying so, so that an outage can raise an alert."""
    up = redis_ping(timeout=0.5) is None
    lines = [
        "# HELP sop_llm_redis_up 1 when Redis answers.",
        "# TYPE sop_llm_redis_up gauge",
        f"sop_llm_redis_up {int(up)}",
    ]
    if not up:
        return "\n".join(lines) + "\n"
    lines += _counter_lines() + key_usage_lines() + _liveness_lines() + _slot_lines()
    return "\n".join(lines) + "\n"


def _slot_lines() -> list[str]:
    slots = (model_status()["loaded"] or {}).get("slots") or {}
    lines = [
        "# HELP sop_llm_gpu_slots Sequences the loaded model decodes together (GPU_SLOTS).",
        "# TYPE sop_llm_gpu_slots gauge",
        f"sop_llm_gpu_slots {slots.get('total') or 0}",
        "# HELP sop_llm_gpu_slots_busy Slots generating now.",
        "# TYPE sop_llm_gpu_slots_busy gauge",
        f"sop_llm_gpu_slots_busy {slots.get('busy') or 0}",
    ]
    return lines


def _liveness_lines() -> list[str]:
    lines = [
        "# HELP sop_llm_tasks_processing Tasks running now, per lane.",
        "# TYPE sop_llm_tasks_processing gauge",
    ]
    lines += [
        f'sop_llm_tasks_processing{{lane="{lane}"}} {len(queue.processing(lane))}'
        for lane in TASK_LANES
    ]
    lines += [
        "# HELP sop_llm_tasks_stuck Tasks marked processing that no live worker runs.",
        "# TYPE sop_llm_tasks_stuck gauge",
        f"sop_llm_tasks_stuck {len(lost_tasks())}",
        "# HELP sop_llm_workers_live Workers with a fresh liveness record, per lane.",
        "# TYPE sop_llm_workers_live gauge",
    ]
    return lines + [
        f'sop_llm_workers_live{{lane="{lane}"}} {len(live_workers(lane))}' for lane in LANES
    ]


def _counter_lines() -> list[str]:
    redis = get_redis()
    totals = {k: int(v) for k, v in redis.hgetall(keys.stats_total()).items()}
    lines = [
        "# HELP sop_llm_tasks_total Tasks that reached a state, by provider.",
        "# TYPE sop_llm_tasks_total counter",
    ]
    for name, value in sorted(totals.items()):
        if ":" in name:
            status, provider = name.split(":", 1)
            lines.append(f'sop_llm_tasks_total{{status="{status}",provider="{provider}"}} {value}')
    for name, help_ in (
        ("tokens_in", "Prompt tokens processed."),
        ("tokens_out", "Tokens generated."),
    ):
        lines += [
            f"# HELP sop_llm_{name}_total {help_}",
            f"# TYPE sop_llm_{name}_total counter",
            f"sop_llm_{name}_total {totals.get(name, 0)}",
        ]
    lines += [
        "# HELP sop_llm_tasks_preempted_total Running tasks whose slot a more urgent task took.",
        "# TYPE sop_llm_tasks_preempted_total counter",
        f"sop_llm_tasks_preempted_total {totals.get('preempted', 0)}",
    ]
    lines += [
        "# HELP sop_llm_queue_depth Pending tasks per lane.",
        "# TYPE sop_llm_queue_depth gauge",
    ]
    lines += [f'sop_llm_queue_depth{{lane="{lane}"}} {queue.depth(lane)}' for lane in TASK_LANES]
    return (
        lines
        + _histograms(redis)
        + _webhook_and_model_lines(totals)
        + _batch_lines(totals)
        + _gpu_lines()
    )


def _batch_lines(totals: dict) -> list[str]:
    snapshot = batches_snapshot(limit=0)
    lines = [
        "# HELP sop_llm_batches_total Batches created, and batches that ended, by status.",
        "# TYPE sop_llm_batches_total counter",
    ]
    for status in ("created", "completed", "failed", "expired", "cancelled"):
        value = totals.get(f"batches_{status}", 0)
        lines.append(f'sop_llm_batches_total{{status="{status}"}} {value}')
    lines += [
        "# HELP sop_llm_batches_active Batches not yet ended, by status.",
        "# TYPE sop_llm_batches_active gauge",
    ]
    for status in ("validating", "in_progress", "finalizing", "cancelling"):
        value = snapshot["by_status"].get(status, 0)
        lines.append(f'sop_llm_batches_active{{status="{status}"}} {value}')
    return lines + [
        "# HELP sop_llm_batch_lines_waiting Lines of active batches not yet written out.",
        "# TYPE sop_llm_batch_lines_waiting gauge",
        f"sop_llm_batch_lines_waiting {snapshot['lines_waiting']}",
    ]


def _histograms(redis) -> list[str]:
    lines = []
    for name, bounds in HISTOGRAMS.items():
        raw = redis.hgetall(keys.metrics_histogram(name))
        unit = "milliseconds" if name.endswith("_ms") else "rate"
        metric = f"sop_llm_{name.removesuffix('_ms')}_{unit}"
        lines += [
            f"# HELP {metric} Distribution of {name} per completed task.",
            f"# TYPE {metric} histogram",
        ]
        running = 0
        for bound in (*bounds, "+Inf"):
            running += int(raw.get(str(bound), 0))
            lines.append(f'{metric}_bucket{{le="{bound}"}} {running}')
        lines += [
            f"{metric}_sum {float(raw.get('sum', 0))}",
            f"{metric}_count {raw.get('count', 0)}",
        ]
    return lines


def _webhook_and_model_lines(totals: dict) -> list[str]:
    lines = [
        "# HELP sop_llm_webhook_deliveries_total Webhook deliveries by outcome.",
        "# TYPE sop_llm_webhook_deliveries_total counter",
    ]
    for outcome in ("delivered", "failed"):
        value = totals.get(f"webhook_{outcome}", 0)
        lines.append(f'sop_llm_webhook_deliveries_total{{outcome="{outcome}"}} {value}')
    lines += [
        "# HELP sop_llm_model_loads_total Model loads by the GPU worker.",
        "# TYPE sop_llm_model_loads_total counter",
        f"sop_llm_model_loads_total {totals.get('model_loads', 0)}",
    ]
    return lines


def _gpu_lines() -> list[str]:
    from models_gpu.vram import gpu_status

    gpu = gpu_status()
    lines = [
        "# HELP sop_llm_gpu_available 1 when NVML sees the GPU.",
        "# TYPE sop_llm_gpu_available gauge",
        f"sop_llm_gpu_available {int(gpu.available)}",
    ]
    if gpu.available:
        for name in ("memory_total_mb", "memory_used_mb", "memory_free_mb"):
            metric = f"sop_llm_gpu_{name.removesuffix('_mb')}_bytes"
            lines += [f"# TYPE {metric} gauge", f"{metric} {getattr(gpu, name) * 1024 * 1024}"]
        lines += [
            "# TYPE sop_llm_gpu_utilization_ratio gauge",
            f"sop_llm_gpu_utilization_ratio {gpu.utilization_percent / 100}",
        ]
    return lines
