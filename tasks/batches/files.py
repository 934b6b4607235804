"""Files of the Batch API, kept in Redis for SESSION_TTL_HOURS: the uploaded JSONL inputs and
the output/error files a batch writes. Each belongs to its owner (the principal's id): another
owner's file is a 404, and listings show only one's own."""

import time
import uuid

from django.conf import settings

from sop_llm.core import jsonparse, keys
from sop_llm.core.errors import NotFound, ServiceError
from sop_llm.core.redis import get_redis, get_rq_redis

PURPOSES = ("batch",)  # what a client may upload; a batch writes "batch_output" files
LIST_LIMIT_MAX = 10_000


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex[:24]}"


def ttl_seconds() -> int:
    return settings.SESSION_TTL_HOURS * 3600


def file_create(*, owner: str, purpose: str, filename: str, content: bytes) -> dict:
    """Store an upload after the checks that need no parsing (size, line count)."""
    if purpose not in PURPOSES:
        raise ServiceError(
            f"purpose {purpose!r} is not supported; this service stores files for "
            "purpose 'batch' only",
            code="invalid_value",
            field="purpose",
        )
    _check_content(content)
    file_id = new_file_id()
    lines = line_count(content)
    get_redis().set(keys.file_content(file_id), content, ex=ttl_seconds())
    return file_register(
        owner=owner, file_id=file_id, purpose=purpose, filename=filename, lines=lines
    )


def line_count(content: bytes) -> int:
    return content.count(b"\n") + (0 if content.endswith(b"\n") else 1)


def check_size(size: int) -> None:
    if size > settings.BATCH_MAX_FILE_BYTES:
        raise ServiceError(
            f"the file is {size} bytes; the limit is {settings.BATCH_MAX_FILE_BYTES} "
            "(BATCH_MAX_FILE_BYTES)",
            code="file_too_large",
            status=413,
            field="file",
        )


def _check_content(content: bytes) -> None:
    check_size(len(content))
    if not content.strip():
        raise ServiceError("the file is empty", code="empty_file", field="file")
    lines = line_count(content)
    if lines > settings.BATCH_MAX_LINES:
        raise ServiceError(
            f"the file has {lines} lines; the limit is {settings.BATCH_MAX_LINES} "
            "(BATCH_MAX_LINES)",
            code="too_many_lines",
            field="file",
        )
    _check_jsonl(content)


def _check_jsonl(content: bytes) -> None:
    """Each line one JSON object, found at upload rather than when a batch first reads it."""
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file's final newline
    for number, line in enumerate(lines, start=1):
        try:
            value = jsonparse.loads(line)
        except jsonparse.BadJSON as exc:
            raise _bad_line(number, f"not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise _bad_line(number, "not a JSON object")


def _bad_line(number: int, why: str) -> ServiceError:
    message = f"line {number} of the file is {why}; a batch input is JSONL, one object a line"
    return ServiceError(message, code="invalid_file", field="file")


def file_register(*, owner: str, file_id: str, purpose: str, filename: str, lines: int) -> dict:
    """The record of a file whose content is stored (an upload, or a batch's output)."""
    client, now = get_redis(), time.time()
    size = client.strlen(keys.file_content(file_id))
    record = {
        "id": file_id,
        "owner": owner,
        "purpose": purpose,
        "filename": filename,
        "bytes": size,
        "lines": lines,
        "created_at": int(now),
        "expires_at": int(now) + ttl_seconds(),
    }
    pipe = client.pipeline(transaction=False)
    pipe.hset(keys.file_meta(file_id), mapping=record)
    pipe.expire(keys.file_meta(file_id), ttl_seconds())
    pipe.expire(keys.file_content(file_id), ttl_seconds())
    pipe.zadd(keys.files_of(owner), {file_id: now})
    pipe.expire(keys.files_of(owner), ttl_seconds())
    pipe.execute()
    return file_object(record)


def file_object(record: dict) -> dict:
    """OpenAI's File object."""
    return {
        "id": record["id"],
        "object": "file",
        "bytes": int(record["bytes"]),
        "created_at": int(record["created_at"]),
        "expires_at": int(record["expires_at"]),
        "filename": record["filename"],
        "purpose": record["purpose"],
        "status": "processed",
        "status_details": None,
    }


def file_record(*, owner: str, file_id: str) -> dict:
    record = get_redis().hgetall(keys.file_meta(file_id)) if len(file_id) <= 64 else {}
    if not record or record["owner"] != owner:  # another owner's file does not exist for you
        raise NotFound(f"No such File object: {file_id}")
    return record


def file_get(*, owner: str, file_id: str) -> dict:
    return file_object(file_record(owner=owner, file_id=file_id))


def file_content(*, owner: str, file_id: str) -> bytes:
    file_record(owner=owner, file_id=file_id)
    content = get_rq_redis().get(keys.file_content(file_id))
    if content is None:
        raise NotFound(f"No such File object: {file_id}")
    return content


def file_delete(*, owner: str, file_id: str) -> dict:
    file_record(owner=owner, file_id=file_id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.delete(keys.file_meta(file_id), keys.file_content(file_id))
    pipe.zrem(keys.files_of(owner), file_id)
    pipe.execute()
    return {"id": file_id, "object": "file", "deleted": True}


def file_list(*, owner: str, purpose: str | None, after: str | None, limit: int) -> dict:
    """Newest first, like OpenAI's; `after` is the last id of the previous page."""
    client = get_redis()
    ids = client.zrevrange(keys.files_of(owner), 0, -1)
    if after is not None:
        ids = ids[ids.index(after) + 1 :] if after in ids else []
    records, gone = [], []
    pipe = client.pipeline(transaction=False)
    for file_id in ids:
        pipe.hgetall(keys.file_meta(file_id))
    for file_id, record in zip(ids, pipe.execute() if ids else [], strict=True):
        if not record:
            gone.append(file_id)
        elif purpose is None or record["purpose"] == purpose:
            records.append(record)
    if gone:  # expired with their TTL
        client.zrem(keys.files_of(owner), *gone)
    page = records[:limit]
    return {
        "object": "list",
        "data": [file_object(r) for r in page],
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(records) > limit,
    }
