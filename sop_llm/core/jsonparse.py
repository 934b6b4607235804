"""The one JSON parser for request bodies: DRF routes (the parser class) and the plain /v1 views.

Plain `json.loads` lets through what later code cannot handle: NaN/Infinity (stored, then every
read of the task fails to render), 1e999 (an infinite float), lone UTF-16 surrogates (no UTF-8
encoding, so Redis refuses them), nesting deep enough to exhaust the recursion limit, and a key
given twice in one object (json.loads keeps the last silently; a strict input cannot guess which
the client meant). Each is refused here, before any view sees the body, as a `BadJSON` the
route turns into its own 400.
"""

import json
import math
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64
# A JSON string (escapes included), then any run of characters that cannot open or close a level.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class BadJSON(ValueError):
    """A request body that is not JSON we accept; the message says why."""


def _refuse_constant(name: str) -> None:
    raise BadJSON(f"{name} is not a JSON number (non-finite numbers are refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJSON(f"the number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise BadJSON(f"the key {key[:64]!r} is given twice in one object")
        seen[key] = value
    return seen


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than `limit` without recursing (strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > limit:
            raise BadJSON(f"JSON nested deeper than {limit} levels")


def loads(raw: bytes | str) -> Any:
    """Parse a request body strictly; raise BadJSON with a reason a client can act on."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
    except UnicodeDecodeError as exc:
        raise BadJSON(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    check_depth(text)
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except BadJSON:
        raise
    except ValueError as exc:  # JSONDecodeError, and int() of over-long digit strings
        raise BadJSON(str(exc)) from None
    _check_encodable(value)
    return value


def _check_encodable(value: Any) -> None:
    # Escaped lone surrogates ("\ud800") decode to str that no UTF-8 encoder (Redis) accepts.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadJSON("a string holds a lone UTF-16 surrogate (not valid Unicode)") from None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the checks of `loads` (the REST_FRAMEWORK default)."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            return loads(stream.read() if stream is not None else b"")
        except BadJSON as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
