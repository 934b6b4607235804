"""`/v1/models`: the valid local models of the catalog, as OpenAI's model objects."""

from models_gpu.catalog import catalog_list
from tasks.targets import UnknownModel


def model_ids() -> list[str]:
    """The ids /v1/models lists: each valid local model's name, `local/<name>` and alias."""
    ids = []
    for info in catalog_list():
        if info.valid:
            ids += [info.name, f"local/{info.name}"] + ([info.alias] if info.alias else [])
    return ids


def model_object(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "sop-llm"}


def models_list() -> dict:
    return {"object": "list", "data": [model_object(i) for i in model_ids()]}


def model_retrieve(model_id: str) -> dict:
    """One model of the list, by id (UnknownModel for any other)."""
    if model_id not in model_ids():
        raise UnknownModel(f"The model '{model_id}' does not exist")
    return model_object(model_id)
