from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from models_gpu.schema import ModelListSerializer, ModelOutcomeSerializer, ModelStatusSerializer
from models_gpu.serializers import ModelLoadSerializer, ModelUnloadSerializer
from models_gpu.services import model_job, model_list, model_load, model_status, model_unload
from sop_llm.errors import ServiceError
from sop_llm.schema import errors


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


class ModelList(APIView):
    """The catalog: GGUF files under MODELS_DIR with their header metadata."""

    @extend_schema(responses={200: ModelListSerializer, **errors(401)})
    def get(self, request):
        return Response({"models": model_list()})


class ModelStatus(APIView):
    """The GPU (or "no GPU") and the model the GPU worker holds."""

    @extend_schema(responses={200: ModelStatusSerializer, **errors(401, 503)})
    def get(self, request):
        return Response(model_status())


class ModelLoad(APIView):
    """Load a catalog model on the GPU worker, ahead of queued tasks."""

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
        return _outcome(model_load(name=name, overrides=data, wait_seconds=wait))


class ModelUnload(APIView):
    """Unload the model and free the GPU."""

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
        return _outcome(model_unload(wait_seconds=serializer.validated_data["wait_seconds"]))


class ModelJob(APIView):
    """Follow a load/unload that outlasted its wait."""

    @extend_schema(
        responses={
            200: ModelOutcomeSerializer,
            202: ModelOutcomeSerializer,
            **errors(401, 404, 409),
        }
    )
    def get(self, request, job_id: str):
        return _outcome(model_job(job_id=job_id))
