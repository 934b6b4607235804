"""OpenAI Chat Completions (api.openai.com, or OPENAI_BASE_URL)."""

from django.conf import settings

from sop_llm.providers.errors import missing_key
from sop_llm.providers.openai_wire import OPENAI_FIELDS, chat_complete
from sop_llm.providers.options import KeyOptions
from sop_llm.providers.types import GenerateRequest, GenerateResult, ProviderCapabilities


class OpenAIProvider:
    name = "openai"
    options_serializer = KeyOptions
    capabilities = ProviderCapabilities(chat=True, structured_output="json_schema")
    honours = OPENAI_FIELDS

    def generate(self, request: GenerateRequest) -> GenerateResult:
        key = request.options.get("api_key") or settings.OPENAI_API_KEY
        if not key:
            raise missing_key(self.name, request.model, "OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}", **(request.options.get("headers") or {})}
        url = f"{settings.OPENAI_BASE_URL.rstrip('/')}/chat/completions"
        return chat_complete(request, url=url, headers=headers, provider=self.name)
