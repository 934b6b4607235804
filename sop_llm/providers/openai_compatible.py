"""Any server that speaks OpenAI Chat Completions: presets, or a base_url of the caller's."""

from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from sop_llm.core.netguard import UnsafeURL, check_url
from sop_llm.core.strict import StrictChoiceField, StrictURLField
from sop_llm.providers.errors import ProviderError
from sop_llm.providers.openai_wire import OPENAI_FIELDS, chat_complete
from sop_llm.providers.options import KeyOptions
from sop_llm.providers.types import GenerateRequest, GenerateResult, ProviderCapabilities

# preset -> (base URL, name of the setting holding its API key). vLLM's own default port, 8000,
# is this service's default PORT too, so the preset expects `vllm serve ... --port 8001`; a preset
# that would reach this service itself is refused at submit (tasks.serializers).
PRESETS: dict[str, tuple[str, str | None]] = {
    "lmstudio": ("http://127.0.0.1:1234/v1", None),
    "vllm": ("http://127.0.0.1:8001/v1", None),
    "ollama": ("http://127.0.0.1:11434/v1", None),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "together": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
}


def points_at_us(url: str) -> bool:
    """A loopback URL on this service's own PORT: a task would call the service itself."""
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1", "0.0.0.0")
    return local and (parts.port or 80) == settings.PORT


def _endpoint(options: dict, model: str) -> tuple[str, str | None]:
    """(base_url, api_key). Operator-configured URLs are trusted; a caller's is guarded."""
    if options.get("base_url"):
        try:
            check_url(options["base_url"], what="options.base_url")
        except UnsafeURL as exc:
            raise ProviderError(
                str(exc), code="unsafe_url", provider="openai_compatible", model=model
            ) from None
        return options["base_url"], options.get("api_key")
    preset = options.get("preset")
    if preset:
        base_url, key_setting = PRESETS[preset]
        default_key = getattr(settings, key_setting) if key_setting else None
        return base_url, options.get("api_key") or default_key
    if settings.OPENAI_COMPATIBLE_BASE_URL:
        key = options.get("api_key") or settings.OPENAI_COMPATIBLE_API_KEY
        return settings.OPENAI_COMPATIBLE_BASE_URL, key
    raise ProviderError(
        f"openai_compatible ({model}): no server; give options.base_url or options.preset "
        "or set OPENAI_COMPATIBLE_BASE_URL",
        code="bad_request",
        provider="openai_compatible",
        model=model,
    )


class OpenAICompatibleOptions(KeyOptions):
    base_url = StrictURLField(required=False, max_length=2048)
    preset = StrictChoiceField(choices=list(PRESETS), required=False)

    def validate_preset(self, value: str) -> str:
        if points_at_us(PRESETS[value][0]):
            raise serializers.ValidationError(
                f"{PRESETS[value][0]} is this service's own port (PORT={settings.PORT}); "
                "run that server on another port and give base_url"
            )
        return value


class OpenAICompatibleProvider:
    name = "openai_compatible"
    options_serializer = OpenAICompatibleOptions
    capabilities = ProviderCapabilities(chat=True, structured_output="json_schema")
    honours = OPENAI_FIELDS | {"params.top_k"}  # vLLM, llama-server, LM Studio take top_k

    def generate(self, request: GenerateRequest) -> GenerateResult:
        base_url, key = _endpoint(request.options, request.model)
        headers = dict(request.options.get("headers") or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = f"{base_url.rstrip('/')}/chat/completions"
        p = request.params
        extra = {"top_k": p.top_k} if "top_k" in p.given else None
        return chat_complete(request, url=url, headers=headers, provider=self.name, extra=extra)
