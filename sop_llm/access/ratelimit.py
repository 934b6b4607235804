"""Per-API-key rate limit: the key's own `rpm` limit, else RATE_LIMIT_PER_MINUTE (0 = off).
A fixed one-minute window in Redis (one atomic INCR per request), shared by every web process,
so the count is exact however many requests race."""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from sop_llm.access.principals import Principal
from sop_llm.core import keys
from sop_llm.core.errors import ServiceError, too_many
from sop_llm.core.redis import get_redis

WINDOW_SECONDS = 60


def rpm_of(principal: Principal) -> int:
    own = principal.limits.rpm
    return settings.RATE_LIMIT_PER_MINUTE if own is None else own


def rate_check(principal: Principal) -> float | None:
    """None when allowed; else the seconds until the window resets (for Retry-After)."""
    limit = rpm_of(principal)
    if not limit:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = keys.rate_limit(principal.id, window)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, WINDOW_SECONDS * 2)
    count, _ = pipe.execute()
    if count <= limit:
        return None
    return (window + 1) * WINDOW_SECONDS - now


def rate_limited(principal: Principal) -> ServiceError | None:
    """The 429 to answer, or None when the key is within its limit."""
    wait = rate_check(principal)
    return None if wait is None else too_many(wait, limit=_limit_name(principal))


def _limit_name(principal: Principal) -> str:
    if principal.limits.rpm is None:
        return f"RATE_LIMIT_PER_MINUTE={settings.RATE_LIMIT_PER_MINUTE}"
    return f"this key's rpm limit of {principal.limits.rpm} requests per minute"


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        if request.user is None or request.auth is None:
            return True  # authentication answers first (401)
        self._wait = rate_check(request.user)
        if self._wait is not None:
            raise too_many(self._wait, limit=_limit_name(request.user))
        return True

    def wait(self) -> float | None:
        return self._wait
