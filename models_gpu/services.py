"""Model services. Load and unload run on the GPU worker (the process that owns the model);
the web process enqueues them at the front of the GPU queue and waits a short while."""

import asyncio
import json
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from rq.job import Job

from models_gpu.catalog import catalog_list, catalog_resolve
from models_gpu.vram import gpu_status
from sop_llm import keys
from sop_llm.errors import ServiceError
from sop_llm.redis import get_redis, get_rq_redis
from tasks.queue import rq_queue

POLL_SECONDS = 0.05


def model_list() -> list[dict]:
    return [info.to_dict() for info in catalog_list()]


def model_status() -> dict:
    loaded = get_redis().get(keys.gpu_loaded(settings.GPU_INDEX))
    return {"gpu": gpu_status().to_dict(), "loaded": json.loads(loaded) if loaded else None}


def _submit(function, *args, wait_seconds: float) -> dict:
    job = rq_queue("gpu").enqueue(
        function, *args, at_front=True, job_timeout=600, result_ttl=3600, failure_ttl=3600
    )
    return model_job_wait(job_id=job.id, seconds=wait_seconds)


def model_job_wait(*, job_id: str, seconds: float) -> dict:
    """Blocking wait, for the command line; the web waits with `amodel_job_wait`."""
    deadline = time.monotonic() + seconds
    while True:
        result = model_job(job_id=job_id)
        if result["state"] != "pending" or time.monotonic() >= deadline:
            return result
        time.sleep(POLL_SECONDS)


async def amodel_job_wait(*, job_id: str, seconds: float) -> dict:
    """The same wait without holding a thread (jobs finish within a load's time)."""
    check = sync_to_async(model_job, thread_sensitive=False)
    deadline = time.monotonic() + seconds
    while True:
        result = await check(job_id=job_id)
        if result["state"] != "pending" or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(POLL_SECONDS)


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
