"""rq jobs: each takes ids only and calls a service."""


def process_next(lane: str) -> str | list[str] | None:
    from django.conf import settings

    from models_gpu.guard import preferred_model_key
    from tasks.processor import task_process_next
    from tasks.slots import task_process_slots

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


def run_batch(batch_id: str) -> str:
    from tasks.batches.runner import batch_run

    return batch_run(batch_id=batch_id)


def deliver_batch_webhook(batch_id: str) -> str:
    from tasks.batches.webhook import batch_webhook_deliver

    return batch_webhook_deliver(batch_id=batch_id)
