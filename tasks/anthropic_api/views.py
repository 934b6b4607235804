"""`/v1/messages` and `/v1/messages/count_tokens`: thin routes over serving.py."""

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sop_llm.core import jsonparse
from tasks.anthropic_api.blocks import RequestError
from tasks.anthropic_api.errors import anthropic_key_required, anthropic_methods
from tasks.anthropic_api.protocol import messages_request
from tasks.anthropic_api.serving import refusal, streaming, task_for, wait
from tasks.anthropic_api.stream import message_stream
from tasks.anthropic_api.tokens import tokens_count
from tasks.services import new_task_id
from tasks.waiting import TaskEvents


def request_body(raw: bytes, *, counting: bool = False) -> dict:
    """The checked request; RequestError names what is wrong."""
    try:
        body = jsonparse.loads(raw or b"{}")
    except jsonparse.BadJSON as exc:
        raise RequestError(None, f"The body is not valid JSON: {exc}") from None
    return messages_request(body, counting=counting)


@csrf_exempt
@anthropic_key_required
@anthropic_methods("POST")
async def messages(request):
    task_id = new_task_id()
    try:
        checked = request_body(request.body)
        stream = checked.get("stream", False)
        tokens = stream and not _whole(checked)
        events = TaskEvents(task_id, tokens=tokens)
        await events.__aenter__()  # subscribe before the task exists: no token is missed
    except Exception as exc:
        return refusal(exc)
    try:
        task = await sync_to_async(task_for)(request, checked, task_id=task_id)
    except Exception as exc:
        await events.__aexit__(None, None, None)
        return refusal(exc)
    if task["task_id"] != task_id:  # an idempotent replay: follow the task that exists
        await events.__aexit__(None, None, None)
        events = await TaskEvents(task["task_id"], tokens=tokens).__aenter__()
    if stream:
        response = streaming(message_stream(events, task, checked["model"]))
    else:
        response = await wait(events, task, checked["model"])
    response["X-SOP-Task-Id"] = task["task_id"]
    return response


def _whole(checked: dict) -> bool:
    """Tools stream whole at the end: a tool call is known only then."""
    choice = (checked.get("tool_choice") or {}).get("type")
    return bool(checked.get("tools")) and choice != "none"


@csrf_exempt
@anthropic_key_required
@anthropic_methods("POST")
async def count_tokens(request):
    try:
        checked = request_body(request.body, counting=True)
        return JsonResponse({"input_tokens": await sync_to_async(tokens_count)(checked)})
    except Exception as exc:
        return refusal(exc)
