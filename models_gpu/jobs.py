"""Jobs that run on the GPU worker, in the process that owns the model.

Each announces its outcome (kept under its job id, and published) so that callers wait on
an event, not by polling rq."""

import json
from functools import wraps

from rq import get_current_job

from models_gpu.catalog import catalog_resolve
from models_gpu.guard import gpu_guard
from models_gpu.provider import load_params_for
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from sop_llm.providers.errors import ProviderError

OUTCOME_TTL_SECONDS = 3600


def announced(job):
    @wraps(job)
    def run(*args) -> dict:
        try:
            outcome = {"state": "done", **job(*args)}
        except Exception as exc:
            _announce({"state": "failed", "error": f"{type(exc).__name__}: {exc}"})
            raise
        _announce(outcome)
        return outcome

    return run


def _announce(outcome: dict) -> None:
    current = get_current_job()
    if current is None:  # called directly, not by a worker: nobody waits
        return
    message = json.dumps({**outcome, "job_id": current.id})
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(keys.model_job_outcome(current.id), message, ex=OUTCOME_TTL_SECONDS)
    pipe.publish(keys.pubsub_model_job(current.id), message)
    pipe.execute()


@announced
def load_model(name: str, overrides: dict) -> dict:
    info = catalog_resolve(name)
    params = load_params_for(info, overrides)
    guard = gpu_guard()
    current = guard.loaded
    if current is not None and current.info.path == info.path and current.params.covers(params):
        return {"outcome": "already_loaded", "hot_path": True, "model": guard.status()}
    try:
        loaded = guard.load(info, params)
    except ProviderError as exc:
        return {"outcome": "refused", "reason": exc.code, "message": exc.message}
    return {
        "outcome": "loaded",
        "hot_path": False,
        "load_ms": loaded.load_ms,
        "model": guard.status(),
    }


@announced
def unload_model() -> dict:
    freed = gpu_guard().unload()
    return {"outcome": "unloaded" if freed else "nothing_loaded", "freed": freed}
