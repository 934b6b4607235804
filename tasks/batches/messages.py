"""Message Batches on the Batch API's runner (tasks.batches): the requests are stored as the
batch's input file (`/v1/messages` lines), checked here first as a POST to /v1/messages is, so
a bad request is a 400 naming it and a batch that is made always runs. Lines, exactly-once
bookkeeping, cancel and expiry are the runner's; the results are the batch's output and error
files, whose lines tasks/anthropic_api/batch_lines.py writes in Anthropic's shape."""

import json
import re

from django.conf import settings

from sop_llm.core import keys
from sop_llm.core.errors import Conflict, NotFound
from sop_llm.core.redis import get_redis, get_rq_redis
from tasks.anthropic_api.batch_lines import ENDPOINT
from tasks.anthropic_api.blocks import RequestError
from tasks.batches import files, services
from tasks.batches.records import Batch, batch_load
from tasks.batches.validate import LineError, line_parse

PREFIX, OURS = "msgbatch_", "batch_"  # Anthropic's ids; the runner's own
CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LIST_LIMIT_MAX = 1000


def public_id(batch_id: str) -> str:
    return PREFIX + batch_id.removeprefix(OURS)


def message_batch_create(*, owner: str, requests) -> Batch:
    lines = _lines(requests)
    content = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
    upload = files.file_create(
        owner=owner, purpose="batch", filename="message_batch.jsonl", content=content
    )
    batch = services.batch_create(
        owner=owner,
        input_file_id=upload["id"],
        endpoint=ENDPOINT,
        completion_window="24h",
        metadata=None,
        webhook_url=None,
    )
    get_redis().hset(keys.batch(batch["id"]), "total", len(lines))  # counted already
    return batch_load(batch["id"])


def _lines(requests) -> list[dict]:
    if not isinstance(requests, list) or not requests:
        raise RequestError("requests", "a non-empty array of requests is required")
    if len(requests) > settings.BATCH_MAX_LINES:
        raise RequestError("requests", f"at most {settings.BATCH_MAX_LINES} (BATCH_MAX_LINES)")
    seen, lines = set(), []
    for index, item in enumerate(requests):
        line = _line(index, item)
        if line["custom_id"] in seen:
            raise RequestError(f"requests.{index}.custom_id", "is repeated; each must be unique")
        seen.add(line["custom_id"])
        lines.append(line)
    return lines


def _line(index: int, item) -> dict:
    where = f"requests.{index}"
    if not isinstance(item, dict) or set(item) != {"custom_id", "params"}:
        raise RequestError(where, "an object of custom_id and params is required")
    if not isinstance(item["custom_id"], str) or not CUSTOM_ID.fullmatch(item["custom_id"]):
        raise RequestError(f"{where}.custom_id", "1 to 64 letters, digits, _ or -")
    line = {"custom_id": item["custom_id"], "method": "POST", "url": ENDPOINT}
    line["body"] = item["params"]
    try:  # the runner's own checks: what passes here runs
        line_parse(json.dumps(line).encode(), number=index + 1, endpoint=ENDPOINT)
    except LineError as exc:
        param = (exc.param or "body").replace("body", "params", 1)
        raise RequestError(f"{where}.{param}", exc.message) from None
    return line


def message_batch_get(*, owner: str, batch_id: str) -> Batch:
    """Another owner's batch, or an OpenAI batch, does not exist here."""
    ours = OURS + batch_id.removeprefix(PREFIX) if batch_id.startswith(PREFIX) else ""
    batch = batch_load(ours) if ours else None
    if batch is None or batch.owner != owner or batch.endpoint != ENDPOINT:
        raise NotFound(f"No such message batch: {batch_id}")
    return batch


def message_batch_cancel(*, owner: str, batch_id: str) -> Batch:
    batch = message_batch_get(owner=owner, batch_id=batch_id)
    services.batch_cancel(owner=owner, batch_id=batch.id)
    return batch_load(batch.id)


def message_batch_list(*, owner: str, after_id: str | None, before_id: str | None, limit: int):
    """-> (batches newest first, has_more); `after_id` pages older, `before_id` newer."""
    ids = [public_id(i) for i in get_redis().zrevrange(keys.batches_of(owner), 0, -1)]
    if after_id is not None:
        ids = ids[ids.index(after_id) + 1 :] if after_id in ids else []
    if before_id is not None:
        ids = ids[: ids.index(before_id)] if before_id in ids else []
    page = []
    for batch_id in ids:
        try:
            page.append(message_batch_get(owner=owner, batch_id=batch_id))
        except NotFound:  # an OpenAI batch, or gone with its TTL
            continue
        if len(page) > limit:
            break
    return page[:limit], len(page) > limit


def message_batch_results(*, owner: str, batch_id: str) -> bytes:
    """The JSONL results (succeeded lines, then the rest), once the batch has ended."""
    batch = message_batch_get(owner=owner, batch_id=batch_id)
    if not batch.final:
        raise Conflict(
            f"message batch {batch_id} has not ended; its results come once it has",
            code="batch_not_ended",
        )
    client = get_rq_redis()  # bytes: the lines as written
    parts = [client.get(keys.file_content(f)) or b"" for f in (batch.output_file, batch.error_file)]
    return b"".join(parts)
