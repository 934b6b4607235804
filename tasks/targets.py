"""A model name as a door's caller writes it -> the task's target (provider, model): one reading
for every door (the OpenAI routes, the Responses and Messages APIs, a batch line)."""

from models_gpu.catalog import catalog_list
from sop_llm.providers import REGISTRY


class UnknownModel(LookupError):
    def __init__(self, message: str, param: str = "model"):
        super().__init__(message)
        self.param = param  # the request field that named it: model, or fallbacks.N


def resolve_model(name: str, param: str = "model") -> tuple[str, str]:
    """`provider/model`, or a local catalog name/alias -> (provider, model)."""
    provider, _, model = name.partition("/")
    if model and provider in REGISTRY:
        return provider, model
    for info in catalog_list():
        if info.valid and name in (info.name, info.alias):
            return "local", name
    raise UnknownModel(f"The model '{name}' does not exist", param)
