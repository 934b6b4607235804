"""Serializers and fields that refuse instead of guessing.

DRF's fields coerce: `"true"` and `1` become True, `42` becomes the string "42", `"nan"` a float
NaN, and unknown keys are dropped without a word (a typo such as `max_token` silently runs with
the default). Every request body of ours is JSON, so its types are exact; these fields accept
only the JSON type they document and the serializer refuses keys it does not know, each with a
400 that names the field.
"""

import difflib
import math
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from sop_llm.core.netguard import UnsafeURL, check_url


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (int | float, "a number"), (str, "a string")):
        if isinstance(value, kind):
            return name
    return "an array" if isinstance(value, list) else "an object"


def wrong_type(expected: str, value: Any) -> serializers.ValidationError:
    return serializers.ValidationError(f"must be {expected}, not {json_type(value)}")


def unknown_field(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
    return f"unknown field; {hint}"


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare (the first one is named)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = [name for name, field in self.fields.items() if not field.read_only]
            for name in data:
                if name not in known:
                    raise serializers.ValidationError({name: [unknown_field(str(name), known)]})
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise wrong_type("a string", data)
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise wrong_type("a string", data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise wrong_type("an integer", data)
        return data


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise wrong_type("a number", data)
        try:
            value = float(data)
        except OverflowError:  # an integer too large for a float
            raise serializers.ValidationError("number out of range") from None
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number")
        return value


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise wrong_type("true or false", data)
        return data


class StrictRegexField(serializers.RegexField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise wrong_type("a string", data)
        return super().to_internal_value(data)


class StrictURLField(StrictCharField):
    """An http(s) URL whose port and host parse, and that is not ours to reach (SSRF guard)."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            check_url(value, what="")
        except UnsafeURL as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value
