"""When will a queued task start? From what is ahead of it, not from one average per lane.

Each completion records `total_ms:generation_ms:tokens_out:max_tokens`. From the lane's recent
ones: the overhead of a task (total minus generation), the time per generated token, and how
much of its `max_tokens` a task uses. A task ahead costs overhead + per-token time x its own
`max_tokens` x that fill ratio; a running one, half of that; the lane's live workers share it.
"""

import time
from dataclasses import dataclass

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import queue

RECENT = 50
AHEAD_LIMIT = 1000


@dataclass(frozen=True)
class LaneProfile:
    overhead_s: float
    seconds_per_token: float
    fill: float
    avg_ms: float

    def expected_seconds(self, max_tokens: int) -> float:
        return self.overhead_s + self.seconds_per_token * self.fill * max_tokens


def completion_record(timings: dict, tokens_out: int, max_tokens: int) -> str:
    return f"{timings['total_ms']}:{timings['generation_ms'] or 0}:{tokens_out}:{max_tokens}"


def lane_profile(lane: str) -> LaneProfile | None:
    rows = [_parse(r) for r in get_redis().lrange(keys.lane_durations(lane), 0, RECENT - 1)]
    rows = [r for r in rows if r]
    if not rows:
        return None
    total, generation, tokens, asked = (sum(column) for column in zip(*rows, strict=True))
    return LaneProfile(
        overhead_s=max(0.0, total - generation) / len(rows) / 1000,
        seconds_per_token=generation / 1000 / tokens if tokens else 0.0,
        fill=min(1.0, tokens / asked) if asked else 1.0,
        avg_ms=total / len(rows),
    )


def _parse(raw: str) -> tuple[float, float, float, float] | None:
    try:
        total, generation, tokens, asked = (float(x) for x in raw.split(":"))
    except ValueError:
        return None  # written by an older version
    return total, generation, tokens, asked


def queue_estimate(lane: str, task_id: str, workers: int) -> dict:
    position = queue.position(lane, task_id)
    profile = lane_profile(lane)
    estimate = {"position": position, "estimated_start_at": None, "recent_avg_ms": None}
    if position is None or profile is None:
        return estimate
    ahead = [t for t, _ in queue.pending(lane, min(position - 1, AHEAD_LIMIT))]
    running = list(queue.processing(lane))
    asked = _max_tokens(ahead + running)
    seconds = sum(profile.expected_seconds(n) for n in asked[: len(ahead)])
    seconds += sum(profile.expected_seconds(n) / 2 for n in asked[len(ahead) :])
    estimate.update(
        estimated_start_at=time.time() + seconds / max(1, workers), recent_avg_ms=profile.avg_ms
    )
    return estimate


def _max_tokens(task_ids: list[str]) -> list[int]:
    pipe = get_redis().pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(keys.session(task_id), "max_tokens")
    return [int(value or 0) for value in pipe.execute()]
