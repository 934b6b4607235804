from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from sop_llm.access.apikeys.serializers import (
    CreatedKeySerializer,
    KeyCreateSerializer,
    KeyListSerializer,
    KeySerializer,
    KeyUpdateSerializer,
    KeyUsageSerializer,
    UsageQuery,
)
from sop_llm.access.apikeys.services import (
    key_create,
    key_get,
    key_list,
    key_names,
    key_revoke,
    key_update,
)
from sop_llm.access.apikeys.usage import usage_rows
from sop_llm.access.principals import ANY_KEY, bootstrap_names
from sop_llm.core.errors import NotFound
from sop_llm.core.schema import errors


class KeyList(APIView):
    """Managed API keys: list them, or create one (its key is in this answer only)."""

    required_scope = "admin"

    def get_serializer(self, *args, **kwargs):
        return KeyCreateSerializer(*args, **kwargs)

    @extend_schema(
        operation_id="v1_keys_list", responses={200: KeyListSerializer, **errors(401, 403, 503)}
    )
    def get(self, request):
        return Response({"keys": key_list()})

    @extend_schema(
        request=KeyCreateSerializer,
        responses={201: CreatedKeySerializer, **errors(400, 401, 403, 409, 503)},
    )
    def post(self, request):
        serializer = KeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record, key = key_create(**serializer.validated_data)
        location = {"Location": f"/api/v1/keys/{record['id']}"}
        return Response({**record, "key": key}, status=status.HTTP_201_CREATED, headers=location)


class KeyDetail(APIView):
    """One managed key: read it, change its name, scopes, expiry or limits, or revoke it."""

    required_scope = "admin"

    @extend_schema(responses={200: KeySerializer, **errors(401, 403, 404, 503)})
    def get(self, request, key_id: str):
        return Response(key_get(key_id=key_id))

    @extend_schema(
        request=KeyUpdateSerializer,
        responses={200: KeySerializer, **errors(400, 401, 403, 404, 409, 503)},
    )
    def patch(self, request, key_id: str):
        serializer = KeyUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return Response(key_update(key_id=key_id, **serializer.validated_data))

    @extend_schema(responses={200: KeySerializer, **errors(401, 403, 404, 503)})
    def delete(self, request, key_id: str):
        """Revoke: refused within a second by every process, open WebSockets closed."""
        return Response(key_revoke(key_id=key_id))


class Usage(APIView):
    """Usage per key, day and model: a key sees its own; an admin key everyone's (`key`,
    `model` filter)."""

    required_scope = ANY_KEY

    @extend_schema(parameters=[UsageQuery], responses={200: KeyUsageSerializer, **errors(400, 401)})
    def get(self, request):
        query = UsageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        wanted = query.validated_data.get("key")
        owner = request.user.owner_filter
        if owner and wanted and wanted != owner:
            raise NotFound(f"no API key {wanted!r}")  # another owner's: existence is not told
        rows = usage_rows(
            days=query.validated_data["days"],
            names={**bootstrap_names(), **key_names()},
            principal_id=owner or wanted,
            model=query.validated_data.get("model"),
        )
        return Response({"usage": rows})
