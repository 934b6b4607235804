"""rq jobs of the Batch API: each takes ids only and calls a service. Enqueued by name, so
the task core never imports the Batch API."""


def run_batch(batch_id: str) -> str:
    from tasks.batches.runner import batch_run

    return batch_run(batch_id=batch_id)


def deliver_batch_webhook(batch_id: str) -> str:
    from tasks.batches.webhook import batch_webhook_deliver

    return batch_webhook_deliver(batch_id=batch_id)
