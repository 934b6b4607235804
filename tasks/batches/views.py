"""`/v1/files` (upload: multipart, purpose=batch; list, get, content, delete) and `/v1/batches`
(create, list, get, cancel): OpenAI's Files and Batch API on the task queue, answering in the
OpenAI door's error shape."""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sop_llm.core import jsonparse
from sop_llm.core.errors import ServiceError
from sop_llm.core.schema import documented
from tasks.batches import files, schema, services
from tasks.batches.serializers import BatchCreate, FileUpload, ListQuery, valid
from tasks.openai.errors import answering, openai_error, openai_key_required, openai_methods


def _single_parts(request) -> dict:
    """The form's fields, each given once: of two `file` parts, neither is kept silently."""
    for parts in (request.POST, request.FILES):
        for name, values in parts.lists():
            if len(values) > 1:
                raise ServiceError(f"{name} is given {len(values)} times; send it once", field=name)
    return {**request.POST.dict(), **request.FILES.dict()}


@documented(
    get={**schema.LISTING, "summary": "The caller's files", "operation_id": "v1_files_list"},
    post=schema.FILE_UPLOAD,
)
@csrf_exempt
@openai_key_required
@answering
@openai_methods("GET", "POST")
def file_collection(request):
    owner = request.user.id
    if request.method == "GET":
        query = valid(ListQuery, request.GET.dict())
        page = files.file_list(
            owner=owner,
            purpose=query.get("purpose"),
            after=query.get("after"),
            limit=query.get("limit", files.LIST_LIMIT_MAX),
        )
        return JsonResponse(page)
    form = valid(FileUpload, _single_parts(request))
    upload = form["file"]
    files.check_size(upload.size)  # before its bytes are read into memory
    created = files.file_create(
        owner=owner,
        purpose=form["purpose"],
        filename=upload.name or "upload",
        content=upload.read(),
    )
    return JsonResponse(created)


@documented(
    get={**schema.ONE, "summary": "A file"}, delete={**schema.ONE, "summary": "Delete a file"}
)
@csrf_exempt
@openai_key_required
@answering
@openai_methods("GET", "DELETE")
def file_detail(request, file_id: str):
    if request.method == "GET":
        return JsonResponse(files.file_get(owner=request.user.id, file_id=file_id))
    return JsonResponse(files.file_delete(owner=request.user.id, file_id=file_id))


@documented(get={**schema.CONTENT, "summary": "A file's bytes"})
@openai_key_required
@answering
@openai_methods("GET")
def file_content(request, file_id: str):
    content = files.file_content(owner=request.user.id, file_id=file_id)
    return HttpResponse(content, content_type="application/jsonl")


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
