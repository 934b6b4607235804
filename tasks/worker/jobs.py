"""rq jobs: each takes ids only and calls a service."""


def process_next(lane: str) -> str | list[str] | None:
    from django.conf import settings

    from models_gpu.guard import preferred_model_key
    from tasks.worker.processor import task_process_next
    from tasks.worker.slots import task_process_slots

    if lane == "gpu" and settings.GPU_SLOTS > 1:
        return task_process_slots(lane=lane, slots=settings.GPU_SLOTS)
    if lane != "gpu":
        return task_process_next(lane=lane)
    return task_process_next(
        lane=lane, preferred_model=preferred_model_key(), gpu_id=str(settings.GPU_ID)
    )


def deliver_webhook(task_id: str) -> None:
    from tasks.webhooks import webhook_deliver

    webhook_deliver(task_id=task_id)
