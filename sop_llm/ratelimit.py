"""Per-API-key rate limit (RATE_LIMIT_PER_MINUTE; 0 = off): a fixed one-minute window in
Redis, shared by every web process."""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from sop_llm import keys
from sop_llm.errors import ServiceError, too_many
from sop_llm.redis import get_redis

WINDOW_SECONDS = 60


def rate_check(client_id: str) -> float | None:
    """None when allowed; else the seconds until the window resets (for Retry-After)."""
    limit = settings.RATE_LIMIT_PER_MINUTE
    if not limit:
        return None
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = keys.rate_limit(client_id, window)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, WINDOW_SECONDS * 2)
    count, _ = pipe.execute()
    if count <= limit:
        return None
    return (window + 1) * WINDOW_SECONDS - now


def rate_limited(client_id: str) -> ServiceError | None:
    """The 429 to answer, or None when the key is within its limit."""
    wait = rate_check(client_id)
    return None if wait is None else too_many(wait)


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        if request.user is None or request.auth is None:
            return True  # authentication answers first (401)
        self._wait = rate_check(request.user.id)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
