"""A batch as stored: one Redis hash (request, status, `{status}_at` stamps, live counters) and
its guarded status moves. Nothing here grows with the number of lines."""

import json
import time
from dataclasses import dataclass, field

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import lua

FINAL = ("completed", "failed", "expired", "cancelled")
STAMPS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
INTS = ("total", "completed", "failed", "cursor", "enqueue_done", "stopped", "expired_lines")


@dataclass
class Batch:
    id: str
    owner: str
    status: str
    endpoint: str
    input_file_id: str
    output_file: str  # reserved at creation: the lines are APPENDed there as they finish
    error_file: str
    completion_window: str = "24h"
    metadata: dict | None = None
    webhook_url: str = ""
    errors: list | None = None
    output_file_id: str = ""  # set once the file is registered (at the end)
    error_file_id: str = ""
    stamps: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def expired(self) -> bool:
        return time.time() >= self.stamps["expires_at"]

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> "Batch":
        plain = {
            name: raw.get(name, "")
            for name in cls.__dataclass_fields__
            if name not in ("metadata", "errors", "stamps", "counts")
        }
        return cls(
            **plain,
            metadata=json.loads(raw["metadata"]) if raw.get("metadata") else None,
            errors=json.loads(raw["errors"]) if raw.get("errors") else None,
            stamps={name: int(float(raw[name])) for name in STAMPS if raw.get(name)},
            counts={name: int(raw.get(name) or 0) for name in INTS},
        )


def batch_load(batch_id: str) -> Batch | None:
    raw = get_redis().hgetall(keys.batch(batch_id)) if len(batch_id) <= 64 else {}
    return Batch.from_hash(raw) if raw else None


# A guarded status move with its stamp; a final one leaves the active set.
# KEYS: batch, active set. ARGV: new status, allowed (comma-separated), now, batch id, final
# (1/0), then field/value pairs to set with it. -> {1, previous} | {0, current ('' = none)}
MOVE = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, ''} end
if not string.find(',' .. ARGV[2] .. ',', ',' .. current .. ',', 1, true) then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[1] .. '_at', ARGV[3], unpack(ARGV, 6))
if ARGV[5] == '1' then redis.call('SREM', KEYS[2], ARGV[4]) end
return {1, current}
"""


def batch_move(batch_id: str, status: str, allowed: tuple[str, ...], **fields) -> bool:
    flat = [item for pair in fields.items() for item in (pair[0], str(pair[1]))]
    args = [status, ",".join(allowed), int(time.time()), batch_id, int(status in FINAL), *flat]
    done, _ = lua.run(MOVE, keys=[keys.batch(batch_id), keys.batches_active()], args=args)
    return bool(done)


# Every line is accounted for (written to the output or error file): in_progress moves to
# finalizing here, once; a cancelling batch is reported so that its caller ends it.
# KEYS: batch. ARGV: now. -> the status to finish from, or ''
PROGRESS = """
local b = redis.call('HMGET', KEYS[1], 'status', 'total', 'completed', 'failed', 'enqueue_done')
if b[5] ~= '1' then return '' end
if tonumber(b[3] or '0') + tonumber(b[4] or '0') < tonumber(b[2] or '0') then return '' end
if b[1] == 'in_progress' then
  redis.call('HSET', KEYS[1], 'status', 'finalizing', 'finalizing_at', ARGV[1])
  return 'finalizing'
end
if b[1] == 'finalizing' or b[1] == 'cancelling' then return b[1] end
return ''
"""


def batch_progress(batch_id: str) -> str:
    """'' while lines are outstanding; else the status the batch finishes from."""
    return lua.run(PROGRESS, keys=[keys.batch(batch_id)], args=[int(time.time())]) or ""


# Lines that will never run (the batch was cancelled or expired before they were enqueued),
# written as error lines in one step with the cursor that says they are handled; a second
# runner with a stale cursor writes nothing. KEYS: batch, error file. ARGV: expected cursor,
# new cursor, count, the lines. -> 1 | 0
SKIP = """
if (redis.call('HGET', KEYS[1], 'cursor') or '0') ~= ARGV[1] then return 0 end
redis.call('APPEND', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[3])
redis.call('HSET', KEYS[1], 'cursor', ARGV[2])
return 1
"""


def lines_skip(batch: Batch, *, cursor: int, new_cursor: int, lines: str, ttl: int) -> bool:
    target = keys.file_content(batch.error_file)
    args = [cursor, new_cursor, new_cursor - cursor, lines]
    done = lua.run(SKIP, keys=[keys.batch(batch.id), target], args=args)
    get_redis().expire(target, ttl)
    return bool(done)
