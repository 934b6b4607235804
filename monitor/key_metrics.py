"""/metrics lines of usage per API key, labelled by the key's name and id (never the key), by
model."""

from sop_llm.apikeys.services import key_names
from sop_llm.apikeys.usage import usage_totals
from sop_llm.principals import bootstrap_names

METRICS = (
    ("tasks", "sop_llm_key_tasks_total", "Finished tasks per API key and model."),
    ("prompt_tokens", "sop_llm_key_prompt_tokens_total", "Prompt tokens per API key and model."),
    (
        "completion_tokens",
        "sop_llm_key_completion_tokens_total",
        "Completion tokens per API key and model.",
    ),
    (
        "generation_seconds",
        "sop_llm_key_generation_seconds_total",
        "Local (GPU lane) generation seconds per API key and model.",
    ),
)


def key_usage_lines() -> list[str]:
    totals = usage_totals()
    names = {**bootstrap_names(), **key_names()}
    lines = []
    for counter, metric, help_ in METRICS:
        lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} counter"]
        for (owner, model), counters in sorted(totals.items()):
            # The id too: a revoked key's name may be given to a new key (one series each).
            name = _label(names.get(owner, owner))
            labels = f'key="{name}",key_id="{owner}",model="{_label(model)}"'
            lines.append(f"{metric}{{{labels}}} {counters[counter]}")
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
