"""Managed key services. The key is returned once, by key_create, and stored only as its
sha256; every other answer shows the record (id, name, scopes, limits, dates)."""

import time
import uuid
from typing import Any

from sop_llm.access.principals import KeyRecord, Limits, digest_of, new_key
from sop_llm.core import keys
from sop_llm.core.errors import Conflict, NotFound, ServiceError
from sop_llm.core.redis import get_redis


def key_create(
    *, name: str, scopes: list[str], expires_at: float | None = None, limits: Limits | None = None
) -> tuple[dict, str]:
    """-> (the record as shown, the key itself: shown this once and never again)."""
    _check_expiry(expires_at)
    record = KeyRecord(
        id=f"key_{uuid.uuid4().hex[:16]}",
        name=name,
        scopes=sorted(set(scopes)),
        limits=limits or Limits(),
        created_at=time.time(),
        expires_at=expires_at,
    )
    key = new_key()
    digest = digest_of(key)
    _claim_name(name, record.id)
    pipe = get_redis().pipeline(transaction=True)
    pipe.hset(keys.api_key(digest), mapping=record.to_hash())
    pipe.hset(keys.api_key_ids(), record.id, digest)
    pipe.execute()
    return record.public(), key


def key_list() -> list[dict]:
    digests = get_redis().hgetall(keys.api_key_ids())
    pipe = get_redis().pipeline(transaction=False)
    for digest in digests.values():
        pipe.hgetall(keys.api_key(digest))
    records = [KeyRecord.from_hash(raw) for raw in pipe.execute() if raw]
    return [r.public() for r in sorted(records, key=lambda r: r.created_at)]


def key_get(*, key_id: str) -> dict:
    return _load(key_id)[1].public()


UNCHANGED: Any = object()


def key_update(
    *,
    key_id: str,
    name: str | None = None,
    scopes: list[str] | None = None,
    expires_at: float | None = UNCHANGED,
    limits: Limits | None = None,
) -> dict:
    """Change what was given (`expires_at=None`: never expires); a revoked key stays
    revoked (409)."""
    digest, record = _load(key_id)
    if record.revoked_at:
        raise Conflict(f"key {key_id} is revoked; create a new one", code="key_revoked")
    if expires_at is not UNCHANGED:
        _check_expiry(expires_at)
        record.expires_at = expires_at
    if name is not None and name != record.name:
        _claim_name(name, key_id)
        get_redis().hdel(keys.api_key_names(), record.name)
        record.name = name
    record.scopes = sorted(set(scopes)) if scopes is not None else record.scopes
    record.limits = limits if limits is not None else record.limits
    get_redis().hset(keys.api_key(digest), mapping=record.to_hash())
    return record.public()


def key_revoke(*, key_id: str) -> dict:
    """Revoked at once for every process (each request reads the record). Idempotent."""
    digest, record = _load(key_id)
    if not record.revoked_at:
        record.revoked_at = time.time()
        pipe = get_redis().pipeline(transaction=True)
        pipe.hset(keys.api_key(digest), "revoked_at", repr(record.revoked_at))
        pipe.hdel(keys.api_key_names(), record.name)  # the name may be used again
        pipe.execute()
    return record.public()


def key_names() -> dict[str, str]:
    """id -> name of every managed key (for labels: metrics, usage)."""
    return {record["id"]: record["name"] for record in key_list()}


def _load(key_id: str) -> tuple[str, KeyRecord]:
    digest = get_redis().hget(keys.api_key_ids(), key_id) if len(key_id) <= 64 else None
    raw = get_redis().hgetall(keys.api_key(digest)) if digest else None
    if not raw:
        raise NotFound(f"no API key {key_id!r}")
    return digest, KeyRecord.from_hash(raw)


def _claim_name(name: str, key_id: str) -> None:
    if not get_redis().hsetnx(keys.api_key_names(), name, key_id):
        raise Conflict(f"an API key named {name!r} already exists", code="name_taken")


def _check_expiry(expires_at: float | None) -> None:
    if expires_at is not None and expires_at <= time.time():
        raise ServiceError("expires_at is in the past", code="invalid", field="expires_at")
