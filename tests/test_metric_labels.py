"""/metrics series per key and model stay bounded whatever `model` strings tenants send, and
every line is valid Prometheus text (read back with Prometheus' own Python parser)."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.key_metrics import MODELS_PER_KEY
from sop_llm.access.apikeys.usage import usage_field
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tests.fakes.servers import FakeServer, Reply, openai_chat
from tests.keyring import client_with, issue

METRIC = "sop_llm_key_tasks_total"
# What a scraper reads as one sample: name{label="value",...} number, quotes and \ escaped.
SAMPLE = re.compile(r'^[a-z_]+(?:\{(?:[a-z_]+="(?:[^"\\\n]|\\["\\n])*",?)+\})? [-0-9.e+Inf]+$')
HOSTILE = [
    'evil"} 1\nsop_llm_pwned{x="1',
    "back\\slash\\",
    "new\nline",
    "<img src=x onerror=alert(1)>",
    "ünïcödé-模型",
    "x" * 256,
    " leading-space",
    "a{b}c",
]


@pytest.fixture
def vendor():
    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("ok", prompt_tokens=3, completion_tokens=1)))
        yield fake


def run_tasks(key: str, vendor: FakeServer, models: list[str], burst) -> None:
    client = client_with(key)
    for model in models:
        body = {
            "provider": "openai_compatible",
            "model": model,
            "prompt": "hi",
            "options": {"base_url": f"{vendor.url}/v1"},
        }
        assert client.post("/api/v1/tasks", body, format="json").status_code == 202
    burst("remote")


def series(api, key_id: str) -> dict[str, float]:
    """model label -> the key's finished tasks, from Prometheus' own parser."""
    text = api.get("/metrics").content.decode()
    for line in text.splitlines():
        assert line.startswith("#") or SAMPLE.match(line), line
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == METRIC and sample.labels["key_id"] == key_id:
                found[sample.labels["model"]] = sample.value
    return found


def test_many_distinct_hostile_models_make_a_bounded_number_of_series(api, vendor, burst):
    record, key = issue("tasks", name="noisy")
    models = HOSTILE + [f"model-{n}" for n in range(2 * MODELS_PER_KEY)]
    run_tasks(key, vendor, models, burst)
    counts = series(api, record["id"])
    assert len(counts) == MODELS_PER_KEY + 1  # the cap, and `other`
    assert sum(counts.values()) == len(models)  # nothing lost: folded, not dropped
    assert counts["other"] == len(models) - MODELS_PER_KEY
    assert not set(HOSTILE) & set(counts)
    assert "sop_llm_pwned" not in api.get("/metrics").content.decode()


def test_a_labelled_model_keeps_its_series_when_the_cap_fills(api, vendor, burst):
    record, key = issue("tasks", name="growing")
    run_tasks(key, vendor, ["zz-first", "zz-second"], burst)
    assert series(api, record["id"]) == {"zz-first": 1, "zz-second": 1}
    run_tasks(key, vendor, [f"a-{n}" for n in range(MODELS_PER_KEY)] + ["zz-first"], burst)
    after = series(api, record["id"])
    assert after["zz-first"] == 2 and after["zz-second"] == 1  # never moved into `other`
    assert after["other"] == 2 and len(after) == MODELS_PER_KEY + 1


def test_a_local_model_is_one_series_under_its_catalog_name(api):
    """gemma and its file name are the same model: one series, by the catalog's name."""
    record, _ = issue("tasks", name="local")
    for model in ("gemma", "gemma-3-270m-q4_k_m"):
        get_redis().hincrby(keys.usage_total(), usage_field(record["id"], model, "tasks"), 1)
    assert series(api, record["id"]) == {"gemma-3-270m-q4_k_m": 2}
