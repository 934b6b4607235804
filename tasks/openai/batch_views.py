"""`/v1/batches`: create, list, get, cancel (OpenAI's Batch API on the task queue)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sop_llm.core import jsonparse
from sop_llm.core.schema import documented
from tasks.batches import services
from tasks.openai import schema
from tasks.openai.batch_serializers import BatchCreate, ListQuery
from tasks.openai.file_views import answering, valid
from tasks.openai.views import openai_error, openai_key_required, openai_methods


@documented(
    get={**schema.LISTING, "summary": "The caller's batches", "operation_id": "v1_batches_list"},
    post=schema.BATCH_CREATE,
)
@csrf_exempt
@openai_key_required
@answering
@openai_methods("GET", "POST")
def batch_collection(request):
    owner = request.user.id
    if request.method == "GET":
        query = valid(ListQuery, request.GET.dict())
        limit = min(query.get("limit", 20), services.LIST_LIMIT_MAX)
        return JsonResponse(services.batch_list(owner=owner, after=query.get("after"), limit=limit))
    try:
        body = jsonparse.loads(request.body or b"{}")
    except jsonparse.BadJSON as exc:
        return openai_error(400, f"The body is not valid JSON: {exc}", code="invalid_json")
    data = valid(BatchCreate, body)
    data.pop("output_expires_after", None)
    return JsonResponse(
        services.batch_create(
            owner=owner,
            input_file_id=data["input_file_id"],
            endpoint=data["endpoint"],
            completion_window=data["completion_window"],
            metadata=data.get("metadata"),
            webhook_url=data.get("webhook_url"),
        )
    )


@documented(get={**schema.ONE, "summary": "A batch"})
@openai_key_required
@answering
@openai_methods("GET")
def batch_detail(request, batch_id: str):
    return JsonResponse(services.batch_get(owner=request.user.id, batch_id=batch_id))


@documented(post={**schema.ONE, "summary": "Cancel a batch", "request": None})
@csrf_exempt
@openai_key_required
@answering
@openai_methods("POST")
def batch_cancel(request, batch_id: str):
    return JsonResponse(services.batch_cancel(owner=request.user.id, batch_id=batch_id))
