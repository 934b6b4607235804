"""Who is calling: a Principal (id, name, scopes, limits) behind an API key.

Managed keys live in Redis under the sha256 of the key (never the key itself) and are read on
every request, with no cache: a revoked or expired key stops working in every process at once.
`SOP_LLM_API_KEYS` are bootstrap keys: admin principals that live in settings, not in Redis.
"""

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.errors import ServiceError
from sop_llm.core.redis import get_redis

SCOPES = ("tasks", "monitor", "models", "admin")
# What a route declares: the scopes any one of which lets a key in ("admin" always does).
PUBLIC: tuple[str, ...] = ()  # no key at all
ANY_KEY = ("tasks", "monitor", "models")  # any valid key, whatever its scopes
KEY_PREFIX = "sk-sop-"
KEY_PATTERN = re.compile(r"sk-sop-[A-Za-z0-9_-]{16,128}")


@dataclass(frozen=True)
class Limits:
    """Per-key limits; None is no limit (rpm then falls back to RATE_LIMIT_PER_MINUTE).
    `share` is a weight, not a limit: the key's fair share of a busy lane within one
    priority (None is 1; tasks.fair)."""

    rpm: int | None = None
    tokens_per_day: int | None = None
    max_queued: int | None = None
    max_priority: int | None = None
    share: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "Limits":
        return cls(**{k: (data or {}).get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Principal:
    """request.user: `id` is safe to log, store and count by; `digest` ('' for a bootstrap
    key) lets a long-lived connection re-check the key."""

    id: str
    name: str
    scopes: frozenset[str]
    limits: Limits = field(default_factory=Limits)
    digest: str = ""
    is_authenticated: bool = True

    def allows(self, accepted: tuple[str, ...]) -> bool:
        return "admin" in self.scopes or any(scope in self.scopes for scope in accepted)

    @property
    def owner_filter(self) -> str | None:
        """Whose tasks (and usage) it may see: its own id, or None (any owner's) for an admin."""
        return None if "admin" in self.scopes else self.id


class AuthError(ServiceError):
    def __init__(self, message: str):
        super().__init__(message, code="unauthorized", status=401)


def scope_refusal(accepted: tuple[str, ...]) -> ServiceError:
    wanted = " or ".join(accepted)
    return ServiceError(
        f"this API key lacks the {wanted} scope", code="missing_scope", status=403, field=None
    )


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _bootstrap(key: str) -> Principal | None:
    # Compare against every key, without an early exit, so timing says nothing about which.
    matched = None
    for candidate in settings.API_KEYS:
        if hmac.compare_digest(key.encode(), candidate.encode()):
            matched = candidate
    return None if matched is None else _bootstrap_principal(matched)


def _bootstrap_principal(key: str) -> Principal:
    short = digest_of(key)[:12]  # the id such a key always had: its tasks stay its own
    return Principal(id=short, name=f"bootstrap-{short[:6]}", scopes=frozenset({"admin"}))


def bootstrap_names() -> dict[str, str]:
    """id -> name of the bootstrap keys (for labels)."""
    return {p.id: p.name for p in map(_bootstrap_principal, settings.API_KEYS)}


def bootstrap_principal_for(key: str | None) -> Principal | None:
    """The principal of a bootstrap key (compared in process, no Redis), else None."""
    return _bootstrap(key) if key else None


def principal_for(key: str | None) -> Principal:
    """The principal behind a key, or AuthError (401) saying why not."""
    if not key:
        raise AuthError("missing API key")
    bootstrap = _bootstrap(key)
    if bootstrap is not None:
        return bootstrap
    if not KEY_PATTERN.fullmatch(key):
        raise AuthError(f"malformed API key: managed keys look like {KEY_PREFIX}…")
    return principal_by_digest(digest_of(key))


def principal_by_digest(digest: str) -> Principal:
    return principal_from_hash(get_redis().hgetall(keys.api_key(digest)), digest)


def principal_from_hash(raw: dict, digest: str) -> Principal:
    """The stored record as a principal, or AuthError when it no longer opens anything."""
    if not raw:
        raise AuthError("invalid API key")
    record = KeyRecord.from_hash(raw)
    if record.revoked_at:
        raise AuthError("this API key was revoked")
    if record.expired:
        raise AuthError(f"this API key expired at {_iso(record.expires_at)}")
    return Principal(
        id=record.id,
        name=record.name,
        scopes=frozenset(record.scopes),
        limits=record.limits,
        digest=digest,
    )


@dataclass
class KeyRecord:
    """A managed key as stored (and shown, less the digest)."""

    id: str
    name: str
    scopes: list[str]
    limits: Limits
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= time.time()

    @classmethod
    def from_hash(cls, raw: dict) -> "KeyRecord":
        def number(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        return cls(
            id=raw["id"],
            name=raw["name"],
            scopes=[s for s in raw.get("scopes", "").split(",") if s],
            limits=Limits.from_dict(json.loads(raw.get("limits") or "{}")),
            created_at=float(raw["created_at"]),
            expires_at=number("expires_at"),
            revoked_at=number("revoked_at"),
        )

    def to_hash(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": ",".join(self.scopes),
            "limits": json.dumps(self.limits.to_dict()),
            "created_at": repr(self.created_at),
            "expires_at": repr(self.expires_at) if self.expires_at else "",
            "revoked_at": repr(self.revoked_at) if self.revoked_at else "",
        }

    def public(self) -> dict:
        state = "revoked" if self.revoked_at else "expired" if self.expired else "active"
        return {
            "id": self.id,
            "name": self.name,
            "scopes": self.scopes,
            "limits": self.limits.to_dict(),
            "state": state,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
        }


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")
