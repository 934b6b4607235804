"""The one place the inference library's config is read from the settings: the GPU Guard asks
for it at each load, so a model runs as the settings stood when it loaded."""

from django.conf import settings

from models_gpu.engine.config import EngineConfig


def engine_config() -> EngineConfig:
    return EngineConfig(
        slots=settings.GPU_SLOTS,
        threads=settings.LLAMA_THREADS,
        local_engine=settings.LOCAL_ENGINE,
        synthetic_step_ms=settings.SYNTHETIC_STEP_MS,
        grammar_engine=settings.GRAMMAR_ENGINE,
    )
