"""A batch as stored: one Redis hash (request, status, `{status}_at` stamps, live counters) and
its guarded status moves. Nothing here grows with the number of lines."""

import json
import time
from dataclasses import dataclass, field

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tasks import lua
from tasks.batches.lua import MOVE, PROGRESS, SKIP

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


def batch_move(batch_id: str, status: str, allowed: tuple[str, ...], **fields) -> bool:
    """A guarded status move with its stamp (MOVE); False when the batch is not in `allowed`."""
    flat = [item for pair in fields.items() for item in (pair[0], str(pair[1]))]
    args = MOVE.argv(
        flat,
        status=status,
        allowed=",".join(allowed),
        now=int(time.time()),
        batch_id=batch_id,
        final=int(status in FINAL),
    )
    batch_keys = MOVE.keylist(batch=keys.batch(batch_id), active=keys.batches_active())
    done, _ = lua.run(MOVE, keys=batch_keys, args=args)
    return bool(done)


def batch_progress(batch_id: str) -> str:
    """'' while lines are outstanding; else the status the batch finishes from."""
    batch_keys = PROGRESS.keylist(batch=keys.batch(batch_id))
    return lua.run(PROGRESS, keys=batch_keys, args=PROGRESS.argv(now=int(time.time()))) or ""


def lines_skip(batch: Batch, *, cursor: int, new_cursor: int, lines: str, ttl: int) -> bool:
    """Lines that will never run, written as error lines with the cursor past them (SKIP);
    False when another runner moved the cursor first."""
    target = keys.file_content(batch.error_file)
    args = SKIP.argv(cursor=cursor, new_cursor=new_cursor, count=new_cursor - cursor, lines=lines)
    batch_keys = SKIP.keylist(batch=keys.batch(batch.id), error_file=target)
    done = lua.run(SKIP, keys=batch_keys, args=args)
    get_redis().expire(target, ttl)
    return bool(done)
