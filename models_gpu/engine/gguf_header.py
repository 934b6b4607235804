"""Read a GGUF file's metadata (key/value header) without loading weights or vocabularies.

The `gguf` package's GGUFReader materialises every array (a 262k-token vocabulary took 7.7 s
here); listing a catalog must take milliseconds, so arrays are skipped, not read.
"""

import struct
from typing import Any, BinaryIO

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
MAX_KEYS = 100_000
MAX_STRING = 16 * 1024 * 1024


class NotGGUF(ValueError):
    pass


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise NotGGUF("file ends inside the header")
    return struct.unpack(fmt, data)[0]


def _string(f: BinaryIO, keep: bool = True) -> str | None:
    length = _read(f, "<Q")
    if length > MAX_STRING:
        raise NotGGUF(f"implausible string length {length}")
    if not keep:
        f.seek(length, 1)
        return None
    raw = f.read(length)
    if len(raw) != length:
        raise NotGGUF("file ends inside a string")
    return raw.decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _read(f, _SCALARS[kind])
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item_kind, count = _read(f, "<I"), _read(f, "<Q")
        if item_kind == _STRING:
            for _ in range(count):
                _string(f, keep=False)
        elif item_kind in _SCALARS:
            f.seek(struct.calcsize(_SCALARS[item_kind]) * count, 1)
        else:
            raise NotGGUF(f"unsupported array item type {item_kind}")
        return {"array_of": item_kind, "length": count}
    raise NotGGUF(f"unknown value type {kind}")


def read_metadata(path: str) -> dict[str, Any]:
    """All scalar and string metadata; arrays appear as {"array_of", "length"}."""
    with open(path, "rb", buffering=1024 * 1024) as f:
        if f.read(4) != MAGIC:
            raise NotGGUF("no GGUF magic number: not a GGUF file")
        version = _read(f, "<I")
        if version not in (2, 3):
            raise NotGGUF(f"unsupported GGUF version {version}")
        tensor_count, kv_count = _read(f, "<Q"), _read(f, "<Q")
        if kv_count > MAX_KEYS:
            raise NotGGUF(f"implausible key count {kv_count}")
        meta: dict[str, Any] = {"GGUF.version": version, "GGUF.tensor_count": tensor_count}
        for _ in range(kv_count):
            key = _string(f)
            meta[key] = _value(f, _read(f, "<I"))
        return meta
