"""Model services. Load and unload run on the GPU worker (the process that owns the model);
the web process enqueues them at the front of the GPU queue and waits a short while."""

import json

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from rq.job import Job

from models_gpu.catalog import catalog_list, catalog_resolve
from models_gpu.vram import gpu_status
from sop_llm.core import keys
from sop_llm.core.errors import ServiceError
from sop_llm.core.lanes import rq_queue
from sop_llm.core.redis import get_redis, get_rq_redis
from sop_llm.core.subscription import BlockingSubscription, Subscription

# By name: the web process never imports the GPU side.
LOAD_JOB, UNLOAD_JOB = "models_gpu.jobs.load_model", "models_gpu.jobs.unload_model"


def model_list() -> list[dict]:
    return [info.to_dict() for info in catalog_list()]


def model_status() -> dict:
    loaded = get_redis().get(keys.gpu_loaded(settings.GPU_ID))
    return {"gpu": gpu_status().to_dict(), "loaded": json.loads(loaded) if loaded else None}


def _submit(job: str, *args, wait_seconds: float) -> dict:
    enqueued = rq_queue("gpu").enqueue(
        job, *args, at_front=True, job_timeout=600, result_ttl=3600, failure_ttl=3600
    )
    return model_job_wait(job_id=enqueued.id, seconds=wait_seconds)


def model_job_wait(*, job_id: str, seconds: float) -> dict:
    """Blocking wait, for the command line; the web waits with `amodel_job_wait`.
    Subscribed before reading, so an outcome announced in between is not missed."""
    if seconds <= 0:
        return _announced(job_id) or model_job(job_id=job_id)
    with BlockingSubscription([keys.pubsub_model_job(job_id)]) as sub:
        outcome = sub.read(lambda: _announced(job_id), "a job read") or sub.first(seconds)
    return outcome or model_job(job_id=job_id)


async def amodel_job_wait(*, job_id: str, seconds: float) -> dict:
    """The same wait without holding a thread, on the web's shared subscribed connection."""
    async with Subscription([keys.pubsub_model_job(job_id)]) as sub:
        raw = await sub.read(sub.client.get(keys.model_job_outcome(job_id)), "a job read")
        outcome = json.loads(raw) if raw else await sub.first(seconds)
    return outcome or await sync_to_async(model_job)(job_id=job_id)


def _announced(job_id: str) -> dict | None:
    raw = get_redis().get(keys.model_job_outcome(job_id))
    return json.loads(raw) if raw else None


def _failure(job: Job) -> str:
    exc_info = job.latest_result().exc_string if job.latest_result() else ""
    return (exc_info or "failed").strip().splitlines()[-1]


def model_load(*, name: str, overrides: dict, wait_seconds: float) -> dict:
    try:
        catalog_resolve(name)
    except LookupError as exc:
        raise ServiceError(str(exc), code="unknown_model", status=400, field="model") from None
    return _submit(LOAD_JOB, name, overrides, wait_seconds=wait_seconds)


def model_unload(*, wait_seconds: float) -> dict:
    return _submit(UNLOAD_JOB, wait_seconds=wait_seconds)


def model_job(*, job_id: str) -> dict:
    try:
        job = Job.fetch(job_id, connection=get_rq_redis())
    except (redis.ConnectionError, redis.TimeoutError):
        raise  # Redis is lost (a 503), not the job
    except Exception:
        raise ServiceError(f"no model job {job_id!r}", code="not_found", status=404) from None
    status = job.get_status(refresh=True)
    if status == "finished":
        return {"state": "done", "job_id": job.id, **job.return_value()}
    if status == "failed":
        return {"state": "failed", "job_id": job.id, "error": _failure(job)}
    return {"state": "pending", "job_id": job.id}
