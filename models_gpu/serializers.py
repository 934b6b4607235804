"""Load parameters, one definition for both places that take them: `POST models/load` and a
local task's `options.load` (a bad value is a 400 at submit, not a crash in the GPU worker)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from grammars.compile import ENGINES
from sop_llm.core.strict import (
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictRegexField,
    StrictSerializer,
)

KV_CACHE_TYPES = ["f16", "f32", "q8_0", "q4_0"]
UNQUANTIZED = ("f16", "f32")
# llama.cpp pads a smaller context up to 256 tokens; asking for less would misreport what loads.
MIN_N_CTX = 256


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["auto"]}]})
class FlashAttnField(serializers.Field):
    """true, false, or "auto" (the default: llama.cpp turns it on where the device has it)."""

    def to_internal_value(self, data):
        if data is True or data is False or data == "auto":
            return data
        raise serializers.ValidationError('must be true, false or "auto"')

    def to_representation(self, value):
        return value


class LoadParamsSerializer(StrictSerializer):
    n_ctx = StrictIntegerField(min_value=MIN_N_CTX, max_value=1_048_576, required=False)
    n_gpu_layers = StrictIntegerField(min_value=-1, max_value=10_000, required=False)
    n_batch = StrictIntegerField(min_value=1, max_value=65_536, required=False)
    type_k = StrictChoiceField(choices=KV_CACHE_TYPES, required=False)
    type_v = StrictChoiceField(choices=KV_CACHE_TYPES, required=False)
    flash_attn = FlashAttnField(required=False)
    chat_format = StrictRegexField(r"^[A-Za-z0-9_.-]{1,64}$", required=False)

    def validate(self, data: dict) -> dict:
        # llama.cpp cannot create a context with a quantized V cache unless flash attention is on.
        if data.get("type_v", "f16") not in UNQUANTIZED and data.get("flash_attn") is not True:
            raise serializers.ValidationError(
                {"type_v": "a quantized V cache needs flash_attn: true"}
            )
        return data


class ModelLoadSerializer(LoadParamsSerializer):
    model = StrictCharField(max_length=256, help_text="catalog name or alias")
    wait_seconds = StrictFloatField(min_value=0, max_value=120, default=30)


class ModelUnloadSerializer(StrictSerializer):
    wait_seconds = StrictFloatField(min_value=0, max_value=120, default=30)


class LocalOptions(StrictSerializer):
    """What a local task takes in `options`."""

    load = LoadParamsSerializer(required=False)
    grammar_engine = StrictChoiceField(choices=list(ENGINES), required=False)
