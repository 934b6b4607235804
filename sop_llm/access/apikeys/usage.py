"""Usage per key, per UTC day and per model, as the tasks layer counts it when a task
finishes: tasks, prompt and completion tokens, local generation seconds."""

import datetime as dt

from sop_llm.core import keys
from sop_llm.core.redis import get_redis

COUNTERS = ("tasks", "prompt_tokens", "completion_tokens", "generation_seconds")
USAGE_TTL_SECONDS = 32 * 86400


def usage_field(principal_id: str, model: str, counter: str) -> str:
    return f"{principal_id}|{model}|{counter}"


def usage_rows(
    *, days: int, names: dict[str, str], principal_id: str | None = None, model: str | None = None
) -> list[dict]:
    """One row per (day, key, model) that has usage, newest day first. `principal_id`,
    `model`: only those. `names`: id -> name for the key_name column."""
    start = dt.datetime.now(dt.UTC).date()
    dates = [(start - dt.timedelta(days=n)).isoformat() for n in range(days)]
    pipe = get_redis().pipeline(transaction=False)
    for date in dates:
        pipe.hgetall(keys.usage_day(date))
    rows = []
    for date, raw in zip(dates, pipe.execute(), strict=True):
        rows += _rows(date, raw, names, principal_id, model)
    return rows


def usage_totals() -> dict[tuple[str, str], dict[str, float]]:
    """(principal id, model) -> counters since the start (for /metrics)."""
    return _group(get_redis().hgetall(keys.usage_total()))


def _rows(date, raw, names, principal_id, model) -> list[dict]:
    rows = []
    for (owner, used_model), counters in sorted(_group(raw).items()):
        if (principal_id and owner != principal_id) or (model and used_model != model):
            continue
        row = {"date": date, "key_id": owner, "key_name": names.get(owner, owner)}
        rows.append({**row, "model": used_model, **counters})
    return rows


def _group(raw: dict[str, str]) -> dict[tuple[str, str], dict[str, float]]:
    grouped: dict[tuple[str, str], dict[str, float]] = {}
    for name, value in raw.items():
        owner, model, counter = _split(name)
        counters = grouped.setdefault((owner, model), dict.fromkeys(COUNTERS, 0))
        number = float(value)
        counters[counter] = round(number, 3) if counter == "generation_seconds" else int(number)
    return grouped


def _split(name: str) -> tuple[str, str, str]:
    # A model name may hold "|": the owner is the first part, the counter the last.
    owner, _, rest = name.partition("|")
    model, _, counter = rest.rpartition("|")
    return owner, model, counter
