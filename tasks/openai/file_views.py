"""`/v1/files`: upload (multipart, purpose=batch), list, get, content, delete."""

import redis
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import ValidationError

from sop_llm.core.errors import ServiceError, _first_error, redis_unavailable
from sop_llm.core.schema import documented
from tasks.batches import files
from tasks.openai import schema
from tasks.openai.batch_serializers import FileUpload, ListQuery
from tasks.openai.views import openai_error, openai_error_from, openai_key_required, openai_methods


def answering(view):
    """One error translation for the Batch API views: ServiceError, a 400 naming the field,
    Redis down; in OpenAI's shape."""

    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ServiceError as exc:
            return openai_error_from(exc)
        except ValidationError as exc:
            field, message = _first_error(exc.detail)
            return openai_error(400, message, param=field, code="invalid_value")
        except (redis.ConnectionError, redis.TimeoutError):
            return openai_error_from(redis_unavailable())

    return wrapper


def valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


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
