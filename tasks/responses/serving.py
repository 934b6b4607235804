"""Responses API services: create (a task), read, cancel, delete, input items, chains.

Every response is a task owned by its caller's key; another key's response is a 404 like a
missing one."""

from rest_framework.exceptions import ValidationError

from sop_llm.core.errors import Conflict, NotFound
from tasks import store
from tasks.openai.translate import task_data
from tasks.responses.items import messages_of
from tasks.responses.objects import output_items, response_object, task_id_of
from tasks.responses.protocol import chat_body
from tasks.responses.record import record_delete, record_load, record_of, record_save
from tasks.serializers import TaskCreateSerializer, idempotency_key_for
from tasks.services import task_cancel, task_create

MAX_CHAIN = 256


def owned(response_id: str, owner: str) -> tuple[store.Task, dict]:
    """(the task, the record) of a stored response its owner asks for, else NotFound."""
    task_id = task_id_of(response_id)
    task = store.load(task_id) if task_id else None
    record = record_load(task_id) if task else None
    if task is None or task.owner != owner or not record or record.get("store") is False:
        raise NotFound(f"no response {response_id!r} (unknown, deleted, or expired)")
    return task, record


def as_input(item: dict) -> dict:
    if item["type"] == "function_call":
        return {k: item[k] for k in ("type", "call_id", "name", "arguments")}
    text = item["content"][0]["text"]
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def chain_items(previous: str | None, owner: str) -> list[dict]:
    """The stored inputs and outputs of the chain ending at `previous`, oldest first."""
    links: list[list[dict]] = []
    while previous:
        if len(links) >= MAX_CHAIN:
            raise ValidationError(
                {"previous_response_id": f"a chain of over {MAX_CHAIN} responses"}
            )
        task, record = owned(previous, owner)
        if task.status != "completed":
            raise ValidationError({"previous_response_id": f"that response is {task.status}"})
        links.append(record["input"] + [as_input(i) for i in output_items(task)])
        previous = record.get("previous_response_id")
    return [item for link in reversed(links) for item in link]


def _refuse_seed_for_openai(body: dict, data: dict) -> None:
    """OpenAI's Responses API, where an `openai` target goes, has no seed."""
    providers = [data["provider"], *(t["provider"] for t in data.get("fallback") or [])]
    if "seed" in body and "openai" in providers:
        raise ValidationError({"seed": "OpenAI's Responses API has no seed"})


def response_create(*, request, body: dict, raw: dict, task_id: str) -> tuple[dict, dict]:
    """Store the record and the task. -> (the task as the API shows it, the record)."""
    owner = request.user.id
    history = chain_items(body.get("previous_response_id"), owner)
    messages = messages_of(history + body["input"], body.get("instructions"))
    serializer = TaskCreateSerializer(data=task_data(chat_body(body, messages), chat=True))
    serializer.is_valid(raise_exception=True)
    _refuse_seed_for_openai(body, serializer.validated_data)
    record = record_of(raw, body["input"])
    record_save(task_id, record)
    key = idempotency_key_for(request, serializer.validated_data.get("idempotency_key"))
    try:
        task, _ = task_create(
            data={**serializer.validated_data, "wire": "responses"},
            idempotency_key=key,
            owner=owner,
            limits=request.user.limits,
            task_id=task_id,
        )
    except Exception:
        record_delete(task_id)
        raise
    if task["task_id"] != task_id:  # an idempotent replay: the response that exists
        record_delete(task_id)
        record = record_load(task["task_id"]) or record
    return task, record


def response_get(*, response_id: str, owner: str) -> dict:
    task, record = owned(response_id, owner)
    return response_object(task, record)


def response_cancel(*, response_id: str, owner: str) -> dict:
    task, record = owned(response_id, owner)
    if task.status == "completed" or task.status == "failed":
        raise Conflict(f"response {response_id} is already {task.status}", code="response_finished")
    if task.status != "cancelled":
        task_cancel(task_id=task.task_id, owner=owner)
    return response_object(store.load(task.task_id) or task, record)


def response_delete(*, response_id: str, owner: str) -> dict:
    task, _ = owned(response_id, owner)
    if not task.final:
        task_cancel(task_id=task.task_id, owner=owner)
    record_delete(task.task_id)
    return {"id": response_id, "object": "response", "deleted": True}


def response_input_items(
    *, response_id: str, owner: str, order: str, limit: int, after: str | None
) -> dict:
    task, record = owned(response_id, owner)
    items = [{"id": f"item_{task.task_id}_{i}", **item} for i, item in enumerate(record["input"])]
    if order == "desc":
        items.reverse()
    ids = [item["id"] for item in items]
    if after is not None:
        if after not in ids:
            raise ValidationError({"after": f"no item {after!r} in this response's input"})
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
