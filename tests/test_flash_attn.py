"""Flash attention `auto` (llama.cpp decides per device) is the default load parameter; true and
false are still taken (issue 26)."""

from pathlib import Path

import pytest

from models_gpu.engine.config import EngineConfig, LoadParams
from models_gpu.engine.llama import LlamaEngine
from models_gpu.serializers import LoadParamsSerializer
from sop_llm.providers.types import GenerateRequest, SamplingParams

MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "gemma-3-270m-q4_k_m.gguf"


@pytest.mark.parametrize("value", ["auto", True, False])
def test_flash_attn_takes_true_false_and_auto(value):
    serializer = LoadParamsSerializer(data={"flash_attn": value})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["flash_attn"] == value


@pytest.mark.parametrize("value", ["on", 1, None, "AUTO"])
def test_any_other_flash_attn_value_is_refused_naming_the_field(value):
    serializer = LoadParamsSerializer(data={"flash_attn": value})
    assert not serializer.is_valid() and "flash_attn" in serializer.errors


def test_a_quantized_v_cache_still_needs_flash_attn_true_not_auto():
    serializer = LoadParamsSerializer(data={"type_v": "q8_0", "flash_attn": "auto"})
    assert not serializer.is_valid() and "type_v" in serializer.errors


@pytest.mark.slow
def test_a_model_loaded_with_the_defaults_runs_with_flash_attention_auto():
    import llama_cpp

    assert LoadParams().flash_attn == "auto"
    engine = LlamaEngine(str(MODEL_PATH), LoadParams(n_ctx=512), EngineConfig(slots=2, threads=2))
    try:
        assert engine.llama.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        request = GenerateRequest(model="g", prompt="Hello", params=SamplingParams(max_tokens=4))
        alone = engine.generate(request, model_name="g")
        tokens = engine.prompt_tokens(request).tokens
        batched = engine.batch.generate(request, prompt_tokens=tokens, model_name="g")
    finally:
        engine.close()
    assert alone.usage.completion_tokens == batched.usage.completion_tokens == 4
