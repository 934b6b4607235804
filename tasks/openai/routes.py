"""`/v1/chat/completions`, `/v1/completions`, `/v1/models`: the OpenAI wire format in front of
the ordinary task pipeline (queue, priorities, GPU Guard, fallbacks, reports). Thin routes: the
body checked (protocol), one serving call, its answer."""

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import ValidationError

from sop_llm.core import jsonparse
from sop_llm.core.schema import documented
from tasks.openai.errors import (
    create_error,
    openai_any_key,
    openai_error,
    openai_key_required,
    openai_methods,
)
from tasks.openai.protocol import schema
from tasks.openai.protocol.requests import openai_request
from tasks.openai.serving.answer import completion_answer
from tasks.openai.serving.models import model_retrieve, models_list
from tasks.targets import UnknownModel


def _request_body(raw: bytes, *, chat: bool) -> tuple[dict, None] | tuple[None, JsonResponse]:
    """(the validated OpenAI request, None) or (None, the 400 to answer)."""
    try:
        body = jsonparse.loads(raw or b"{}")
    except jsonparse.BadJSON as exc:
        return None, openai_error(400, f"The body is not valid JSON: {exc}", code="invalid_json")
    if not isinstance(body, dict):
        return None, openai_error(400, "The body is not a JSON object.", code="invalid_json")
    try:
        return openai_request(body, chat=chat), None
    except ValidationError as exc:
        return None, create_error(exc, body)


@documented(post=schema.CHAT)
@csrf_exempt
@openai_key_required
@openai_methods("POST")
async def chat_completions(request):
    body, refusal = _request_body(request.body, chat=True)
    if refusal is not None:
        return refusal
    return await completion_answer(request, body, chat=True)


@documented(post=schema.COMPLETIONS)
@csrf_exempt
@openai_key_required
@openai_methods("POST")
async def completions(request):
    body, refusal = _request_body(request.body, chat=False)
    if refusal is not None:
        return refusal
    return await completion_answer(request, body, chat=False)


@documented(get=schema.MODELS)
@openai_any_key
@openai_methods("GET")
async def models(request):
    return JsonResponse(await sync_to_async(models_list)())


@documented(get=schema.MODEL)
@openai_any_key
@openai_methods("GET")
async def model_detail(request, model_id: str):
    try:
        return JsonResponse(await sync_to_async(model_retrieve)(model_id))
    except UnknownModel as exc:
        return openai_error(404, str(exc), code="model_not_found")
