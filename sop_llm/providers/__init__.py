"""Provider registry: name -> dotted path, imported on first use.

A new provider is one module with a class that has `name`, `capabilities` and
`generate(request) -> GenerateResult`, plus one line here. The web process never imports the
local (llama.cpp) engine: `local`'s module imports llama_cpp only when it generates.
"""

from functools import cache
from importlib import import_module
from typing import Protocol, runtime_checkable

from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, GenerateResult, ProviderCapabilities

REGISTRY: dict[str, str] = {
    "local": "models_gpu.provider.LocalProvider",
    "openai": "sop_llm.providers.openai.OpenAIProvider",
    "openai_compatible": "sop_llm.providers.openai_compatible.OpenAICompatibleProvider",
    "anthropic": "sop_llm.providers.anthropic.AnthropicProvider",
    "custom": "sop_llm.providers.custom.CustomHTTPProvider",
}


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: ProviderCapabilities

    def generate(self, request: GenerateRequest) -> GenerateResult: ...


@cache
def get_provider(name: str) -> Provider:
    try:
        module_path, _, class_name = REGISTRY[name].rpartition(".")
    except KeyError:
        raise ProviderError(f"unknown provider {name!r}", code="unknown_provider") from None
    return getattr(import_module(module_path), class_name)()


def lane_for(provider: str) -> str:
    """Which worker lane runs a provider: the GPU lane owns the local engine, alone."""
    return "gpu" if get_provider(provider).capabilities.needs_gpu else "remote"
