"""Retry delays, shared by providers and webhook deliveries."""

import email.utils
import random
import time


def retry_delay(*, base: float, retry_index: int, retry_after: float | None, cap: float) -> float:
    """The remote's Retry-After when it gave one, else exponential backoff with jitter;
    both bounded by `cap` so a hostile header cannot park a worker."""
    if retry_after is not None:
        return min(retry_after, cap)
    return min(base * (2**retry_index) * random.uniform(0.5, 1.5), cap)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
