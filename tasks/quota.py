"""Per-key limits at submission: the highest priority a key may use, and the answers for
the limits the CREATE script checks atomically (tasks at once, tokens per UTC day)."""

import datetime as dt
import time

from sop_llm.access.principals import Limits
from sop_llm.core.errors import ServiceError

TOKENS_TTL_SECONDS = 2 * 86400  # a day's charge outlives the day its tasks may finish on


def day_of(stamp: float | None = None) -> str:
    return dt.datetime.fromtimestamp(stamp or time.time(), dt.UTC).date().isoformat()


def check_priority(limits: Limits | None, priority: int) -> None:
    """A key may not jump the queue above its max_priority: refused, never lowered quietly."""
    ceiling = limits.max_priority if limits else None
    if ceiling is not None and priority > ceiling:
        raise ServiceError(
            f"priority {priority} is above this key's max_priority limit ({ceiling})",
            code="limit_max_priority",
            status=400,
            field="priority",
        )


def limit_args(limits: Limits | None) -> list:
    """ARGV for the CREATE script ('' = no limit)."""
    limits = limits or Limits()
    return [_arg(limits.max_queued), _arg(limits.tokens_per_day)]


def limit_refusal(limit: str, current: str, limits: Limits | None, reserve: int) -> ServiceError:
    limits = limits or Limits()
    if limit == "max_queued":
        message = (
            f"this key's max_queued limit ({limits.max_queued} unfinished tasks at once) is "
            f"reached ({current}); retry when one finishes"
        )
        wait = 5
    else:
        message = (
            f"this key's tokens_per_day limit ({limits.tokens_per_day}) is reached: "
            f"{current} charged today, this task reserves max_tokens={reserve}"
        )
        wait = _seconds_to_midnight()
    return ServiceError(
        message, code=f"limit_{limit}", status=429, headers={"Retry-After": str(wait)}
    )


def _arg(value: int | None) -> str:
    return "" if value is None else str(value)


def _seconds_to_midnight() -> int:
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return int((midnight - now).total_seconds()) + 1
