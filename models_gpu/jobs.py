"""Jobs that run on the GPU worker, in the process that owns the model."""

from sop_llm.providers.errors import ProviderError


def load_model(name: str, overrides: dict) -> dict:
    from models_gpu.catalog import catalog_resolve
    from models_gpu.guard import gpu_guard
    from models_gpu.provider import load_params_for

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


def unload_model() -> dict:
    from models_gpu.guard import gpu_guard

    freed = gpu_guard().unload()
    return {"outcome": "unloaded" if freed else "nothing_loaded", "freed": freed}
