"""What the API shows of a batch: OpenAI's Batch object."""

from tasks.batches.records import STAMPS, Batch


def batch_object(batch: Batch) -> dict:
    errors = None
    if batch.errors:
        errors = {"object": "list", "data": batch.errors}
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "errors": errors,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id or None,
        "error_file_id": batch.error_file_id or None,
        **{name: batch.stamps.get(name) for name in STAMPS},
        "request_counts": {
            "total": batch.counts["total"],
            "completed": batch.counts["completed"],
            "failed": batch.counts["failed"],
        },
        "metadata": batch.metadata,
    }
