"""The `local` provider: GGUF models through the GPU Guard. Importing this module is cheap;
llama_cpp is imported only when a model loads (the web process never does)."""

import hashlib
import json
import os
from dataclasses import fields, replace

from models_gpu.catalog import DEFAULT_N_CTX, ModelInfo, catalog_resolve
from models_gpu.engine.choices import local_generate
from models_gpu.engine.config import LoadParams
from models_gpu.serializers import LocalOptions
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.support import FEATURES
from sop_llm.providers.types import GenerateRequest, GenerateResult, ProviderCapabilities

LOAD_OPTION_NAMES = {f.name for f in fields(LoadParams)}


def load_params_for(info: ModelInfo, overrides: dict | None = None) -> LoadParams:
    """Preset defaults, then the caller's overrides; n_ctx never beyond the model's own."""
    values = {"n_ctx": DEFAULT_N_CTX, **info.defaults, **(overrides or {})}
    values = {k: v for k, v in values.items() if k in LOAD_OPTION_NAMES}
    if info.context_length:
        values["n_ctx"] = min(int(values["n_ctx"]), info.context_length)
    return LoadParams(**values)


def load_params_of(model: str, options: dict | None) -> LoadParams | None:
    """What a task for `model` with these options needs loaded (None: no such model; its run
    fails with not_found)."""
    try:
        return load_params_for(catalog_resolve(model), (options or {}).get("load"))
    except LookupError:
        return None


class LocalProvider:
    name = "local"
    options_serializer = LocalOptions
    capabilities = ProviderCapabilities(
        chat=True, completion=True, streaming=True, structured_output="grammar", needs_gpu=True
    )
    honours = frozenset(FEATURES)  # `user` is kept on the task: there is no vendor to tell

    def resolve_model(self, model: str) -> str:
        """The catalog name behind a name or alias (LookupError when there is none)."""
        return catalog_resolve(model).name

    def generate(self, request: GenerateRequest) -> GenerateResult:
        from models_gpu.guard import gpu_guard

        try:
            info = catalog_resolve(request.model)
        except LookupError as exc:
            raise ProviderError(
                str(exc), code="not_found", provider=self.name, model=request.model
            ) from None
        if request.resume is not None and request.resume.model != request.model:
            request = replace(request, resume=None)  # a fallback's model: it starts over
        params = load_params_for(info, request.options.get("load"))
        with gpu_guard().use(info, params) as (engine, hot_path, load_ms):
            result, structured = local_generate(engine, request, info.name)
        result.timings.update(load_ms=load_ms, hot_path=hot_path)
        result.meta["repro"].update(
            gguf_sha256=file_sha256(info.path),
            load_params=params.to_dict(),
            gpu_slots=engine.batch.context.slots if engine.batch else 1,
        )
        result.meta["structured"] = structured
        return result


_sha_cache: dict[tuple, str] = {}


def file_sha256(path: str) -> str:
    """sha256 of a GGUF file, computed once per (path, size, mtime) and remembered in Redis."""
    from sop_llm.core import keys
    from sop_llm.core.redis import get_redis

    stat = os.stat(path)
    stamp = (path, stat.st_size, stat.st_mtime_ns)
    if stamp in _sha_cache:
        return _sha_cache[stamp]
    cache_key = keys.file_hash(json.dumps(stamp))
    digest = get_redis().get(cache_key)
    if not digest:
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(4 * 1024 * 1024), b""):
                sha.update(chunk)
        digest = sha.hexdigest()
        get_redis().set(cache_key, digest, ex=30 * 86400)
    _sha_cache[stamp] = digest
    return digest
