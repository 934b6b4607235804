"""Model services. Load and unload run on the GPU worker (the process that owns the model);
the web process enqueues them at the front of the GPU queue and waits a short while."""

import json
import time

from django.conf import settings
from rq.job import Job

from models_gpu.catalog import catalog_list, catalog_resolve
from models_gpu.vram import gpu_status
from sop_llm import keys
from sop_llm.errors import ServiceError
from sop_llm.redis import get_redis, get_rq_redis
from tasks.queue import rq_queue


def model_list() -> list[dict]:
    return [info.to_dict() for info in catalog_list()]


def model_status() -> dict:
    loaded = get_redis().get(keys.gpu_loaded(settings.GPU_INDEX))
    return {"gpu": gpu_status().to_dict(), "loaded": json.loads(loaded) if loaded else None}


def _submit(function, *args, wait_seconds: float) -> dict:
    job = rq_queue("gpu").enqueue(
        function, *args, at_front=True, job_timeout=600, result_ttl=3600, failure_ttl=3600
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        status = job.get_status(refresh=True)
        if status == "finished":
            return {"state": "done", "job_id": job.id, **job.return_value()}
        if status == "failed":
            return {"state": "failed", "job_id": job.id, "error": _failure(job)}
        time.sleep(0.05)
    return {"state": "pending", "job_id": job.id}


def _failure(job: Job) -> str:
    exc_info = job.latest_result().exc_string if job.latest_result() else ""
    return (exc_info or "failed").strip().splitlines()[-1]


def model_load(*, name: str, overrides: dict, wait_seconds: float) -> dict:
    from models_gpu.jobs import load_model

    try:
        catalog_resolve(name)
    except LookupError as exc:
        raise ServiceError(str(exc), code="unknown_model", status=400, field="model") from None
    return _submit(load_model, name, overrides, wait_seconds=wait_seconds)


def model_unload(*, wait_seconds: float) -> dict:
    from models_gpu.jobs import unload_model

    return _submit(unload_model, wait_seconds=wait_seconds)


def model_job(*, job_id: str) -> dict:
    try:
        job = Job.fetch(job_id, connection=get_rq_redis())
    except Exception:
        raise ServiceError(f"no model job {job_id!r}", code="not_found", status=404) from None
    status = job.get_status(refresh=True)
    if status == "finished":
        return {"state": "done", "job_id": job.id, **job.return_value()}
    if status == "failed":
        return {"state": "failed", "job_id": job.id, "error": _failure(job)}
    return {"state": "pending", "job_id": job.id}
