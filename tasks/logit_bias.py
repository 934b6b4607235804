"""`params.logit_bias`, OpenAI's shape: {"<token id>": bias}, bias from -100 (a ban) to 100 (the
only choice). Ids are checked against the model's vocabulary where the model is known (the
local engine refuses an id past its vocabulary, naming the field)."""

import math
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sop_llm.core.strict import wrong_type

MAX_ENTRIES = 1024  # a tenant's list is bounded: every entry is work on every token
TOKEN_ID = re.compile(r"^[0-9]{1,9}$")
BIAS_RANGE = (-100.0, 100.0)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}}
)
class LogitBiasField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(required=False, default=dict, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, float]:
        if not isinstance(data, dict):
            raise wrong_type("an object of token id -> bias", data)
        if len(data) > MAX_ENTRIES:
            raise serializers.ValidationError(f"at most {MAX_ENTRIES} entries, not {len(data)}")
        return {_token_id(key): _bias(key, value) for key, value in data.items()}

    def to_representation(self, value: dict) -> dict:
        return value


def _token_id(key: str) -> str:
    if not TOKEN_ID.match(key):
        raise serializers.ValidationError(f"{key[:20]!r} is not a token id (digits)")
    return str(int(key))


def _bias(key: str, value: Any) -> float:
    low, high = BIAS_RANGE
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not low <= value <= high:
        raise serializers.ValidationError(
            f"token {key}: the bias must be a number from -100 to 100"
        )
    return float(value)
