"""Daily counters in `stats:daily:{date}` (hash, kept 7 days)."""

import datetime as dt

from sop_llm import keys
from sop_llm.redis import get_redis

STATS_TTL_SECONDS = 7 * 86400


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def stats_incr(pipe, counts: dict[str, int]) -> None:
    key = keys.stats_daily(today())
    for name, amount in counts.items():
        if amount:
            pipe.hincrby(key, name, amount)
    pipe.expire(key, STATS_TTL_SECONDS)


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
