"""Serializers and fields that refuse instead of guessing.

DRF's fields coerce: `"true"` and `1` become True, `42` becomes the string "42", `"nan"` a float
NaN, and unknown keys are dropped without a word (a typo such as `max_token` silently runs with
the default). Every request body of ours is JSON, so its types are exact; these fields accept
only the JSON type they document and the serializer refuses keys it does not know, each with a
400 that names the field.
"""

import difflib
import math
import threading
from collections.abc import Mapping
from typing import Any

from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

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


def bound_fields(serializer: serializers.Serializer) -> BindingDict:
    """What DRF's Serializer.fields builds: get_fields() bound to `serializer`."""
    fields = BindingDict(serializer)
    for name, field in serializer.get_fields().items():
        fields[name] = field
    return fields


class SharedFields:
    """One serializer class's bound fields, built once per process.

    DRF deep-copies every declared field (nested serializers and their fields included) for
    each serializer instance, so that an instance may edit its own fields; on a hot door that
    copy was most of the validation's CPU. Our input serializers never edit their fields and
    keep no request in them: a field's validation reads only its arguments and its own
    configuration, and the `validate_<field>`/`validate` hooks run on the request's instance.
    The fields are therefore bound once to a context-free template instance and shared by
    every instance (and thread) of the class. An instance given a context or `partial` (a
    field may read either through its root) keeps DRF's own copy."""

    _lock = threading.Lock()
    _by_class: dict[type, "SharedFields"] = {}

    def __init__(self, fields: BindingDict):
        self.fields = fields
        self.writable = [name for name, field in fields.items() if not field.read_only]
        self.known = frozenset(self.writable)

    @classmethod
    def of(cls, serializer_class: type) -> "SharedFields":
        shared = cls._by_class.get(serializer_class)
        if shared is None:
            with cls._lock:  # two threads may race to the first request: build it once
                shared = cls._by_class.get(serializer_class)
                if shared is None:
                    template = serializer_class()
                    shared = cls(bound_fields(template))
                    cls._by_class[serializer_class] = shared
        return shared


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare (the first one is named). Its fields are built once
    per class (SharedFields), so a subclass's get_fields() must depend on the class only."""

    @cached_property
    def _shared(self) -> SharedFields | None:
        root = self.root  # a nested serializer's context and partial are its root's
        if root._context or getattr(root, "partial", False):
            return None
        return SharedFields.of(type(self))

    @cached_property
    def fields(self) -> BindingDict:
        shared = self._shared
        return shared.fields if shared else bound_fields(self)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            shared = self._shared
            if shared is None:
                shared = SharedFields(self.fields)
            for name in data:
                if name not in shared.known:
                    known = shared.writable
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


class PassThrough(serializers.Field):
    """Handed on as it came, to be checked by the serializer it is handed to (a door's field
    that the task serializer checks)."""

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # True == 1 in Python; not here


class NotYet(PassThrough):
    """A field of a vendor's reference this service does not implement yet: a 400 naming it,
    unless it holds a no-op value."""

    def __init__(self, noop: tuple = (), **kwargs):
        self.noop = noop
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if any(_same(data, value) for value in self.noop):
            return data
        raise serializers.ValidationError("not supported by this service yet")
