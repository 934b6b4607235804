"""OpenAI Chat Completions, or its Responses API for a /v1/responses task (api.openai.com, or
OPENAI_BASE_URL)."""

from django.conf import settings

from sop_llm.providers.errors import missing_key
from sop_llm.providers.openai_responses import responses_complete
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
        base = settings.OPENAI_BASE_URL.rstrip("/")
        if request.wire == "responses":  # made by /v1/responses: OpenAI's own Responses API
            url = f"{base}/responses"
            return responses_complete(request, url=url, headers=headers, provider=self.name)
        url = f"{base}/chat/completions"
        return chat_complete(request, url=url, headers=headers, provider=self.name)
