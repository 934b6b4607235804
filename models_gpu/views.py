from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from models_gpu.schema import ModelListSerializer, ModelOutcomeSerializer, ModelStatusSerializer
from models_gpu.serializers import ModelLoadSerializer, ModelUnloadSerializer
from models_gpu.services import (
    amodel_job_wait,
    model_job,
    model_list,
    model_load,
    model_status,
    model_unload,
)
from sop_llm.access.principals import ANY_KEY
from sop_llm.core.errors import ServiceError, json_error
from sop_llm.core.schema import errors


def _outcome(result: dict) -> Response:
    if result["state"] == "pending":
        result["follow"] = f"/api/v1/models/jobs/{result['job_id']}"
        return Response(result, status=status.HTTP_202_ACCEPTED)
    if result["state"] == "failed":
        raise ServiceError(
            f"the GPU worker failed the job: {result['error']}", code="model_job_failed", status=500
        )
    if result.get("outcome") == "refused":
        raise ServiceError(result["message"], code=result["reason"], status=409)
    return Response(result)


def _outcome_json(result: dict) -> JsonResponse:
    try:
        response = _outcome(result)
    except ServiceError as exc:
        return json_error(exc)
    return JsonResponse(response.data, status=response.status_code)


def waiting(drf_view):
    """Wrap a DRF view that enqueued a GPU job: wait for it asynchronously, so a long model
    load never pins the thread that every other synchronous request shares."""

    @csrf_exempt
    async def view(request, *args, **kwargs):
        response = await sync_to_async(drf_view)(request, *args, **kwargs)
        wait = getattr(response, "wait_seconds", 0)
        if not wait:
            return response
        result = await amodel_job_wait(job_id=response.data["job_id"], seconds=wait)
        return _outcome_json(result)

    view.cls, view.initkwargs = drf_view.cls, drf_view.initkwargs  # seen by the schema
    return view


class ModelList(APIView):
    """The catalog: GGUF files under MODELS_DIR with their header metadata."""

    required_scope = ANY_KEY

    @extend_schema(responses={200: ModelListSerializer, **errors(401)})
    def get(self, request):
        return Response({"models": model_list()})


class ModelStatus(APIView):
    """The GPU (or "no GPU") and the model the GPU worker holds."""

    required_scope = ANY_KEY

    @extend_schema(responses={200: ModelStatusSerializer, **errors(401, 503)})
    def get(self, request):
        return Response(model_status())


class ModelLoad(APIView):
    """Load a catalog model on the GPU worker, ahead of queued tasks."""

    required_scope = "models"

    def get_serializer(self, *args, **kwargs):
        return ModelLoadSerializer(*args, **kwargs)

    @extend_schema(
        request=ModelLoadSerializer,
        responses={
            200: ModelOutcomeSerializer,
            202: ModelOutcomeSerializer,
            **errors(400, 401, 409, 503),
        },
    )
    def post(self, request):
        serializer = ModelLoadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        name, wait = data.pop("model"), data.pop("wait_seconds")
        response = _outcome(model_load(name=name, overrides=data, wait_seconds=0))
        response.wait_seconds = wait
        return response


class ModelUnload(APIView):
    """Unload the model and free the GPU."""

    required_scope = "models"

    def get_serializer(self, *args, **kwargs):
        return ModelUnloadSerializer(*args, **kwargs)

    @extend_schema(
        request=ModelUnloadSerializer,
        responses={
            200: ModelOutcomeSerializer,
            202: ModelOutcomeSerializer,
            **errors(400, 401, 503),
        },
    )
    def post(self, request):
        serializer = ModelUnloadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        response = _outcome(model_unload(wait_seconds=0))
        response.wait_seconds = serializer.validated_data["wait_seconds"]
        return response


class ModelJob(APIView):
    """Follow a load/unload that outlasted its wait."""

    required_scope = "models"

    @extend_schema(
        responses={
            200: ModelOutcomeSerializer,
            202: ModelOutcomeSerializer,
            **errors(401, 404, 409),
        }
    )
    def get(self, request, job_id: str):
        return _outcome(model_job(job_id=job_id))
