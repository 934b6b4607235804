"""The GPU Guard: one per GPU worker process, the only way to the model and the GPU.

- Across processes: a Redis lease `gpu:lock:{GPU_ID}` held by the GPU worker for its whole
  life (models_gpu/lease.py). A second GPU worker on the same GPU waits and says so; a lock left
  by a killed worker lapses within a few heartbeats on any host, at once when its pid is
  provably gone on this one.
- Inside the process: a lock around load, unload and every generation.
- Hot path: the model already loaded with compatible load parameters is reused (0 ms load).
- Before a load: NVML's free VRAM against the estimate; refused, with the numbers, when it would
  pass MAX_VRAM_USAGE_PERCENT or leave less than VRAM_RESERVE_MB. Without a GPU the guard still
  serialises work; models then run on the CPU.
"""

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from django.conf import settings

from models_gpu.catalog import ModelInfo
from models_gpu.config import engine_config
from models_gpu.engine.config import EngineConfig, LoadParams
from models_gpu.engine.llama import LlamaEngine
from models_gpu.lease import GpuLease
from models_gpu.registry import loaded_publish
from models_gpu.vram import MB, gpu_read
from sop_llm.core.procs import hostname, rss_mb
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.events import publish
from sop_llm.core.telemetry.stats import stats_incr
from sop_llm.providers.errors import ProviderError

log = logging.getLogger(__name__)
CLAIM_TIMEOUT_SECONDS = 30  # a process outside a worker waits this long for the GPU
INTENT_SECONDS = 30  # a claim announces its model this long before the load itself does


@dataclass
class Loaded:
    info: ModelInfo
    params: LoadParams
    engine: LlamaEngine
    loaded_at: float
    load_ms: float
    last_used: float
    rss_before_mb: float
    rss_after_mb: float


class GpuGuard:
    def __init__(self, gpu_id: str):
        self.index = gpu_id  # what its keys and log lines call this GPU (GPU_ID)
        self.lease = GpuLease(gpu_id)
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)  # no generation is using the model
        self._users = 0
        self.loaded: Loaded | None = None
        self.loading: str | None = None  # the model being loaded now, or just claimed for
        self._intent_at = 0.0

    # --- ownership across processes (models_gpu/lease.py) ---------------------------
    @property
    def _owner(self) -> str | None:
        return self.lease.owner

    def claim(self, *, owner: str, wait: bool, timeout: float | None = None) -> None:
        self.lease.claim(owner=owner, wait=wait, timeout=timeout)

    def renew(self) -> None:
        self.lease.renew()

    def shutdown(self) -> None:
        with self._lock:
            self.unload()
            self.lease.release()

    # --- models --------------------------------------------------------------------
    @contextmanager
    def use(self, info: ModelInfo, params: LoadParams):
        """Use the loaded model for one generation -> (engine, hot_path, load_ms). Several
        generations may share it (the batch engine); a load or unload waits until none does."""
        with self._lock:
            if self._owner is None:
                self.claim(
                    owner=f"proc-{hostname()}-{os.getpid()}",
                    wait=True,
                    timeout=CLAIM_TIMEOUT_SECONDS,
                )
            hot = (
                self.loaded is not None
                and self.loaded.info.path == info.path
                and self.loaded.params.covers(params)
            )
            if not hot:
                self.load(info, params)
            loaded = self.loaded
            loaded.last_used = time.time()
            self._users += 1
        try:
            yield loaded.engine, hot, 0.0 if hot else loaded.load_ms
        finally:
            with self._lock:
                self._users -= 1
                loaded.last_used = time.time()
                self._idle.notify_all()
            self._publish_loaded()

    def load(self, info: ModelInfo, params: LoadParams) -> Loaded:
        with self._lock:
            self._idle.wait_for(lambda: self._users == 0)
            if self.loaded is not None:
                self.unload()
            config = engine_config()
            check_vram(info, params, config)
            publish("model.loading", model=info.name, params=params.to_dict())
            self.loading, self._intent_at = info.name, float("inf")
            self._publish_loaded()
            before, started = rss_mb(), time.perf_counter()
            try:
                engine = LlamaEngine(info.path, params, config)
            finally:
                self.loading = None
            load_ms = round((time.perf_counter() - started) * 1000, 1)
            now = time.time()
            self.loaded = Loaded(info, params, engine, now, load_ms, now, before, rss_mb())
            log.info("loaded %s in %.0f ms (%s)", info.name, load_ms, params.to_dict())
            publish("model.loaded", model=info.name, load_ms=load_ms)
            _count_load()
            self._publish_loaded()
            return self.loaded

    def unload(self) -> dict | None:
        with self._lock:
            self._idle.wait_for(lambda: self._users == 0)
            if self.loaded is None:
                return None
            loaded, self.loaded = self.loaded, None
            before = rss_mb()
            loaded.engine.close()
            freed = {
                "model": loaded.info.name,
                "rss_before_mb": round(before, 1),
                "rss_after_mb": round(rss_mb(), 1),
            }
            log.info("unloaded %s (%s)", loaded.info.name, freed)
            publish("model.unloaded", **freed)
            self._publish_loaded()
            return freed

    def intend(self, model_key: str) -> None:
        """A task for `model_key` was just claimed: with nothing loaded, tell the other GPU
        workers now (its load starts only once its slot runs), so they leave its model's
        tasks to this worker instead of loading it too."""
        if self.loaded is None and self.loading is None:
            self.loading, self._intent_at = model_key, time.monotonic()
            self._publish_loaded()

    def status(self) -> dict | None:
        if self.loaded is None:
            return None
        ld = self.loaded
        return {
            "name": ld.info.name,
            "path": ld.info.path,
            "params": ld.params.to_dict(),
            "loaded_at": ld.loaded_at,
            "last_used": ld.last_used,
            "load_ms": ld.load_ms,
            "estimated_bytes": ld.info.estimate_bytes(ld.params.n_ctx),
            "process_rss_mb": round(rss_mb(), 1),
            "owner": self._owner,
            "pid": os.getpid(),
            "slots": _slots_of(ld.engine),
        }

    def publish_status(self) -> None:
        """What is loaded and how busy its slots are, for the monitor (the ticker calls it)."""
        self._publish_loaded()

    def _publish_loaded(self) -> None:
        try:
            status = self.status()
            intended = time.monotonic() - self._intent_at < INTENT_SECONDS
            if status is None and self.loading is not None and intended:  # claimed: say so
                status = {"name": self.loading, "loading": True, "owner": self._owner}
            loaded_publish(self.index, status)
        except redis.RedisError as exc:
            log.warning("could not publish the loaded model: %s", exc)


def _count_load() -> None:

    try:
        pipe = get_redis().pipeline(transaction=False)
        stats_incr(pipe, {"model_loads": 1})
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("model load not counted: %s", exc)


def _slots_of(engine: LlamaEngine) -> dict:
    if engine.batch is None:
        return {"total": 1, "busy": None, "waiting": None}
    stats = engine.batch.stats()
    return {"total": stats["slots"], "busy": stats["busy"], "waiting": stats["waiting"]}


def check_vram(info: ModelInfo, params: LoadParams, config: EngineConfig) -> None:
    """Refuse a load that would not fit; a CPU-only machine (no GPU) has nothing to check."""
    gpu = gpu_read()
    if not gpu.available or params.n_gpu_layers == 0:
        return
    # With a batch, the Llama's own context (one slot's share) sits beside the batch's n_ctx.
    cells = params.n_ctx + (config.single_n_ctx(params) if config.slots > 1 else 0)
    need_mb = info.estimate_bytes(cells) / MB
    used_after = gpu.memory_used_mb + need_mb
    percent_after = 100 * used_after / gpu.memory_total_mb
    left_mb = gpu.memory_free_mb - need_mb
    if percent_after > settings.MAX_VRAM_USAGE_PERCENT or left_mb < settings.VRAM_RESERVE_MB:
        raise ProviderError(
            f"not enough VRAM to load {info.name}: needs ~{need_mb:.0f} MB, "
            f"{gpu.memory_free_mb} MB free of {gpu.memory_total_mb} MB; the load would reach "
            f"{percent_after:.0f}% (MAX_VRAM_USAGE_PERCENT={settings.MAX_VRAM_USAGE_PERCENT}) "
            f"and leave {left_mb:.0f} MB (VRAM_RESERVE_MB={settings.VRAM_RESERVE_MB})",
            code="insufficient_vram",
            provider="local",
            model=info.name,
        )


_guard: GpuGuard | None = None
_guard_lock = threading.Lock()


def gpu_guard() -> GpuGuard:
    global _guard
    with _guard_lock:
        if _guard is None:
            _guard = GpuGuard(settings.GPU_ID)
        return _guard


def loaded_params(model_key: str) -> LoadParams | None:
    """The parameters `model_key` is loaded with on this GPU now, or None."""
    loaded = _guard.loaded if _guard is not None else None
    return loaded.params if loaded is not None and loaded.info.name == model_key else None


def preferred_model_key() -> str:
    """The model the GPU worker has loaded: queued tasks for it may go first (bounded)."""
    return _guard.loaded.info.name if _guard is not None and _guard.loaded else ""
