"""/metrics lines of usage per API key, labelled by the key's name and id (never the key), by
model.

A remote `model` is whatever string a tenant sent (up to 256 characters), and every label value
is a series Prometheus keeps: local models are labelled by their catalog name, remote ones only
when they look like a model name, and at most MODELS_PER_KEY of them per key; the rest of a
key's usage is summed under `other`.
"""

import re
from functools import cache

from models_gpu.catalog import catalog_list
from sop_llm.access.apikeys.services import key_names
from sop_llm.access.apikeys.usage import COUNTERS, usage_totals
from sop_llm.access.principals import bootstrap_names
from sop_llm.core import keys
from sop_llm.core.redis import get_redis

MODELS_PER_KEY = 20
OTHER = "other"
LABELLED_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")
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
# KEYS[1]: the key's labelled models; ARGV[1]: the cap; ARGV[2..]: candidates, busiest first.
# A model labelled once stays labelled and one folded into `other` stays there, so no series
# ever goes down (Prometheus would read a counter that shrinks as a reset).
ADMIT = """
local kept = {}
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 1
     or redis.call('SCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('SADD', KEYS[1], ARGV[i])
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
"""


def key_usage_lines() -> list[str]:
    totals = labelled_totals(usage_totals())
    names = {**bootstrap_names(), **key_names()}
    lines = []
    for counter, metric, help_ in METRICS:
        lines += [f"# HELP {metric} {help_}", f"# TYPE {metric} counter"]
        for (owner, model), counters in sorted(totals.items()):
            # The id too: a revoked key's name may be given to a new key (one series each).
            name = _label(names.get(owner, owner))
            labels = f'key="{name}",key_id="{_label(owner)}",model="{_label(model)}"'
            lines.append(f"{metric}{{{labels}}} {counters[counter]}")
    return lines


def labelled_totals(totals: dict[tuple[str, str], dict]) -> dict[tuple[str, str], dict]:
    """(owner, model) -> counters, re-keyed by (owner, model label); folded models summed."""
    by_owner: dict[str, dict[str, dict]] = {}
    for (owner, model), counters in totals.items():
        by_owner.setdefault(owner, {})[model] = counters
    local = _local_names()
    kept = _admit({owner: _candidates(models, local) for owner, models in by_owner.items()})
    labelled: dict[tuple[str, str], dict] = {}
    for owner, models in by_owner.items():
        for model, counters in models.items():
            label = local.get(model) or (model if model in kept[owner] else OTHER)
            _add(labelled.setdefault((owner, label), dict.fromkeys(COUNTERS, 0)), counters)
    return labelled


def _candidates(models: dict[str, dict], local: dict[str, str]) -> list[str]:
    """A key's remote models that may be labels, busiest first."""
    remote = [m for m in models if m not in local and LABELLED_MODEL.fullmatch(m)]
    return sorted(remote, key=lambda m: (-models[m]["tasks"], m))


def _admit(candidates: dict[str, list[str]]) -> dict[str, set[str]]:
    """owner -> its labelled models; one round trip for every key."""
    owners = [owner for owner, models in candidates.items() if models]
    pipe, script = get_redis().pipeline(transaction=False), _admit_script()
    for owner in owners:
        args = [MODELS_PER_KEY, *candidates[owner]]
        script(keys=[keys.metric_models(owner)], args=args, client=pipe)
    kept: dict[str, set[str]] = {owner: set() for owner in candidates}
    for owner, admitted in zip(owners, pipe.execute() if owners else [], strict=True):
        kept[owner] = set(admitted)
    return kept


@cache
def _admit_script():
    return get_redis().register_script(ADMIT)  # by SHA; a pipeline loads it when Redis lacks it


def _local_names() -> dict[str, str]:
    """Catalog names and aliases -> the catalog name (`gemma` and its file are one series)."""
    names = {}
    for info in catalog_list():
        names[info.name] = info.name
        if info.alias:
            names[info.alias] = info.name
    return names


def _add(into: dict, counters: dict) -> None:
    for counter in COUNTERS:
        total = into[counter] + counters.get(counter, 0)
        into[counter] = round(total, 3) if counter == "generation_seconds" else total


def _label(value: str) -> str:
    """A label value as the Prometheus text format escapes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
