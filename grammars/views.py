from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from grammars.formats import named_grammars
from grammars.preflight import preflight
from sop_llm.providers import REGISTRY


class GrammarList(APIView):
    """The named GBNF grammars (`response_format: {"type": "grammar", "name": ...}`)."""

    def get(self, request):
        grammars = []
        for name, path in named_grammars().items():
            text = path.read_text()
            first = text.splitlines()[0] if text else ""
            grammars.append({"name": name, "description": first.lstrip("# ").strip(), "gbnf": text})
        return Response({"grammars": grammars})


class CheckSerializer(serializers.Serializer):
    schema = serializers.DictField()
    provider = serializers.ChoiceField(choices=sorted(REGISTRY))


class GrammarCheck(APIView):
    """Preflight: per keyword of a JSON schema, how `provider` would enforce it."""

    def get_serializer(self, *args, **kwargs):
        return CheckSerializer(*args, **kwargs)

    def post(self, request):
        serializer = CheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(
            preflight(serializer.validated_data["schema"], serializer.validated_data["provider"])
        )
