"""`/v1/messages/batches`: create, list, retrieve, cancel, results (thin routes)."""

from functools import wraps

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from sop_llm.core import jsonparse
from tasks.anthropic_api.batch_presenters import message_batch_object
from tasks.anthropic_api.batches import (
    LIST_LIMIT_MAX,
    message_batch_cancel,
    message_batch_create,
    message_batch_get,
    message_batch_list,
    message_batch_results,
    public_id,
)
from tasks.anthropic_api.blocks import RequestError
from tasks.anthropic_api.errors import anthropic_key_required, anthropic_methods
from tasks.anthropic_api.serving import refusal


def answering(*methods: str):
    """The method check and one error translation (serving.refusal) for these routes."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except Exception as exc:
                return refusal(exc)

        return csrf_exempt(anthropic_key_required(anthropic_methods(*methods)(wrapper)))

    return decorate


def _shown(request, batch) -> dict:
    path = reverse("anthropic-batch-results", args=[public_id(batch.id)])
    return message_batch_object(batch, results_url=request.build_absolute_uri(path))


@answering("GET", "POST")
def batch_collection(request):
    if request.method == "GET":
        return _listing(request)
    try:
        body = jsonparse.loads(request.body or b"{}")
    except jsonparse.BadJSON as exc:
        raise RequestError(None, f"The body is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"requests"}:
        raise RequestError("requests", "the body is an object with requests alone")
    batch = message_batch_create(owner=request.user.id, requests=body["requests"])
    return JsonResponse(_shown(request, batch))


def _listing(request) -> JsonResponse:
    query = request.GET
    limit = query.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= LIST_LIMIT_MAX:
        raise RequestError("limit", f"an integer from 1 to {LIST_LIMIT_MAX}")
    page, more = message_batch_list(
        owner=request.user.id,
        after_id=query.get("after_id"),
        before_id=query.get("before_id"),
        limit=int(limit),
    )
    data = [_shown(request, batch) for batch in page]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return JsonResponse({"data": data, "has_more": more, "first_id": first, "last_id": last})


@answering("GET")
def batch_detail(request, batch_id: str):
    return JsonResponse(
        _shown(request, message_batch_get(owner=request.user.id, batch_id=batch_id))
    )


@answering("POST")
def batch_cancel(request, batch_id: str):
    batch = message_batch_cancel(owner=request.user.id, batch_id=batch_id)
    return JsonResponse(_shown(request, batch))


@answering("GET")
def batch_results(request, batch_id: str):
    content = message_batch_results(owner=request.user.id, batch_id=batch_id)
    return HttpResponse(content, content_type="application/binary")
