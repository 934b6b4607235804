"""OpenAI Chat Completions (api.openai.com, or OPENAI_BASE_URL)."""

from django.conf import settings

from sop_llm.providers.errors import ProviderError
from sop_llm.providers.openai_wire import chat_complete
from sop_llm.providers.types import GenerateRequest, GenerateResult, ProviderCapabilities


class OpenAIProvider:
    name = "openai"
    capabilities = ProviderCapabilities(chat=True, structured_output="json_schema")

    def generate(self, request: GenerateRequest) -> GenerateResult:
        key = request.options.get("api_key") or settings.OPENAI_API_KEY
        if not key:
            raise ProviderError(
                f"openai ({request.model}): no API key (set OPENAI_API_KEY)",
                code="auth",
                provider=self.name,
                model=request.model,
            )
        headers = {"Authorization": f"Bearer {key}", **(request.options.get("headers") or {})}
        url = f"{settings.OPENAI_BASE_URL.rstrip('/')}/chat/completions"
        return chat_complete(request, url=url, headers=headers, provider=self.name)
