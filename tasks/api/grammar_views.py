"""The grammars endpoints: the named grammars, and the preflight of a schema for a provider.
They live above the providers layer because they name providers (the grammars library does not)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from grammars.formats import named_grammars
from sop_llm.access.principals import ANY_KEY
from sop_llm.core.schema import errors
from sop_llm.core.strict import StrictChoiceField, StrictSerializer
from sop_llm.providers import REGISTRY
from sop_llm.providers.structured import preflight_for


class GrammarSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    gbnf = serializers.CharField()


class GrammarListSerializer(serializers.Serializer):
    grammars = GrammarSerializer(many=True)


class KeywordSerializer(serializers.Serializer):
    path = serializers.CharField()
    keyword = serializers.CharField()
    enforced_by = serializers.ChoiceField(
        choices=["grammar", "provider_strict", "validated", "annotation", "unsupported"]
    )


class PreflightSerializer(serializers.Serializer):
    provider = serializers.CharField()
    ok = serializers.BooleanField()
    enforcement = serializers.ChoiceField(choices=["grammar", "provider_strict", "validated"])
    keywords = KeywordSerializer(many=True)
    unsupported = KeywordSerializer(many=True)
    error = serializers.CharField(
        required=False, help_text="the grammar engine's own words when it refuses the schema"
    )


class GrammarList(APIView):
    """The named GBNF grammars (`response_format: {"type": "grammar", "name": ...}`)."""

    required_scope = ANY_KEY

    @extend_schema(responses={200: GrammarListSerializer, **errors(401)})
    def get(self, request):
        grammars = []
        for name, path in named_grammars().items():
            text = path.read_text()
            first = text.splitlines()[0] if text else ""
            grammars.append({"name": name, "description": first.lstrip("# ").strip(), "gbnf": text})
        return Response({"grammars": grammars})


class CheckSerializer(StrictSerializer):
    schema = serializers.DictField()
    provider = StrictChoiceField(choices=sorted(REGISTRY))


class GrammarCheck(APIView):
    """Preflight: per keyword of a JSON schema, how `provider` would enforce it."""

    required_scope = ANY_KEY

    def get_serializer(self, *args, **kwargs):
        return CheckSerializer(*args, **kwargs)

    @extend_schema(
        request=CheckSerializer, responses={200: PreflightSerializer, **errors(400, 401)}
    )
    def post(self, request):
        serializer = CheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(preflight_for(data["schema"], data["provider"]))
