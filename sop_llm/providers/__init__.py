"""Provider registry: name -> dotted path, from the PROVIDERS setting (like Django's CACHES),
each imported on first use.

A new provider is one module with a class that has `name`, `capabilities` and
`generate(request) -> GenerateResult`, plus one entry in PROVIDERS. The web process never
imports the local (llama.cpp) engine: `local`'s module imports llama_cpp only when it generates.
"""

from collections.abc import Iterator, Mapping
from functools import cache
from importlib import import_module
from typing import Protocol, runtime_checkable

from django.conf import settings

from sop_llm.providers.errors import ProviderError
from sop_llm.providers.types import GenerateRequest, GenerateResult, ProviderCapabilities


class _Registry(Mapping):
    """settings.PROVIDERS, read at each use (so tests and deployments can change it)."""

    def __getitem__(self, name: str) -> str:
        return settings.PROVIDERS[name]

    def __iter__(self) -> Iterator[str]:
        return iter(settings.PROVIDERS)

    def __len__(self) -> int:
        return len(settings.PROVIDERS)


REGISTRY: Mapping[str, str] = _Registry()


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: ProviderCapabilities
    options_serializer: type  # a StrictSerializer of what `options` may hold

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
