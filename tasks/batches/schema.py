"""The Files and Batch routes' shapes for the OpenAPI schema, in the OpenAI door's tag and error
shape (the routes answer as OpenAI's do)."""

from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from tasks.batches.serializers import BatchCreate, FileUpload, ListQuery
from tasks.openai.protocol.schema import TAGS, errors


class OpenAIFileSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(help_text="file")
    bytes = serializers.IntegerField()
    created_at = serializers.IntegerField()
    filename = serializers.CharField()
    purpose = serializers.CharField()


class OpenAIListSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="list")
    data = serializers.ListField(child=serializers.DictField())
    has_more = serializers.BooleanField()


LISTING = {
    "tags": TAGS,
    "parameters": [ListQuery],
    "responses": {200: OpenAIListSerializer, **errors(400)},
}
FILE_UPLOAD = {
    "summary": "Upload a batch input (JSONL)",
    "tags": TAGS,
    "request": {"multipart/form-data": FileUpload},
    "responses": {200: OpenAIFileSerializer, **errors(400, 413)},
}
BATCH_CREATE = {
    "summary": "Start a batch",
    "tags": TAGS,
    "request": BatchCreate,
    "responses": {200: OpenApiTypes.OBJECT, **errors(400, 404)},
}
ONE = {"tags": TAGS, "responses": {200: OpenApiTypes.OBJECT, **errors(404)}}
CONTENT = {"tags": TAGS, "responses": {200: OpenApiTypes.STR, **errors(404)}}
