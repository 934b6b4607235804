"""Counters: per day in `stats:daily:{date}` (7 days), forever in `stats:total`, and
histograms in `stats:hist:{name}` -- all in Redis, so every process adds to the same numbers."""

import datetime as dt

from sop_llm.core import keys
from sop_llm.core.redis import get_redis

STATS_TTL_SECONDS = 7 * 86400
HISTOGRAMS = {
    "task_duration_ms": (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000),
    "tokens_per_second": (1, 5, 10, 20, 40, 80, 160, 320, 640),
    "queue_wait_ms": (5, 10, 50, 100, 500, 1000, 5000, 30000, 300000),
}


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def stats_incr(pipe, counts: dict[str, int]) -> None:
    key = keys.stats_daily(today())
    for name, amount in counts.items():
        if amount:
            pipe.hincrby(key, name, amount)
            pipe.hincrby(keys.stats_total(), name, amount)
    pipe.expire(key, STATS_TTL_SECONDS)


def observe(pipe, name: str, value: float | None) -> None:
    """One observation into a histogram (stored per bucket; /metrics makes it cumulative)."""
    if value is None:
        return
    bounds = HISTOGRAMS[name]
    bucket = next((str(b) for b in bounds if value <= b), "+Inf")
    key = keys.metrics_histogram(name)
    pipe.hincrby(key, bucket, 1)
    pipe.hincrbyfloat(key, "sum", value)
    pipe.hincrby(key, "count", 1)


def stats_days(days: int) -> list[dict]:
    start = dt.datetime.now(dt.UTC).date()
    dates = [(start - dt.timedelta(days=n)).isoformat() for n in range(days)]
    pipe = get_redis().pipeline(transaction=False)
    for date in dates:
        pipe.hgetall(keys.stats_daily(date))
    return [
        {"date": date, **{k: int(v) for k, v in raw.items()}}
        for date, raw in zip(dates, pipe.execute(), strict=True)
    ]
