"""Usage per key, per day and per model: counted when tasks finish, read per tenant."""

import datetime as dt
import io
import json

import pytest
import requests
from django.core.management import call_command

from tests.conftest import API_KEY, wait_for
from tests.fakes.servers import FakeServer, Reply, openai_chat
from tests.keyring import client_with, issue


@pytest.fixture
def remote():
    with FakeServer() as fake:
        fake.reply(*[Reply(200, openai_chat("Paris.", prompt_tokens=9, completion_tokens=2))] * 3)
        yield fake


def body(remote, model="fake-llm"):
    return {
        "provider": "openai_compatible",
        "model": model,
        "prompt": "Capital of France?",
        "options": {"base_url": f"{remote.url}/v1"},
    }


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


@pytest.fixture
def two_tenants(remote, burst):
    (a_record, a), (b_record, b) = issue("tasks", name="shop"), issue("tasks", name="blog")
    client_with(a).post("/api/v1/tasks", body(remote), format="json")
    client_with(a).post("/api/v1/tasks", body(remote, model="other-llm"), format="json")
    client_with(b).post("/api/v1/tasks", body(remote), format="json")
    burst("remote")
    return a_record, a, b_record, b


def test_a_key_reads_its_own_usage_per_day_and_model(two_tenants):
    a_record, a, _, _ = two_tenants
    rows = client_with(a).get("/api/v1/usage").json()["usage"]
    assert rows == [
        {
            "date": today(),
            "key_id": a_record["id"],
            "key_name": "shop",
            "model": model,
            "tasks": 1,
            "prompt_tokens": 9,
            "completion_tokens": 2,
            "generation_seconds": 0,  # remote: the provider bills its own tokens
        }
        for model in ("fake-llm", "other-llm")
    ]


def test_a_tenant_cannot_read_another_s_usage(two_tenants):
    _, a, b_record, _ = two_tenants
    response = client_with(a).get(f"/api/v1/usage?key={b_record['id']}")
    assert response.status_code == 404


def test_an_admin_reads_everyone_s_usage_and_filters_it(two_tenants, api):
    _, _, b_record, _ = two_tenants
    everyone = api.get("/api/v1/usage").json()["usage"]
    assert {(r["key_name"], r["model"]) for r in everyone} == {
        ("shop", "fake-llm"),
        ("shop", "other-llm"),
        ("blog", "fake-llm"),
    }
    [blog] = api.get(f"/api/v1/usage?key={b_record['id']}").json()["usage"]
    assert blog["key_name"] == "blog" and blog["tasks"] == 1
    by_model = api.get("/api/v1/usage?model=other-llm").json()["usage"]
    assert [r["key_name"] for r in by_model] == ["shop"]
    assert api.get("/api/v1/usage?days=40").json()["error"]["field"] == "days"
    assert api.get("/api/v1/usage?days=").json()["error"]["field"] == "days"


def test_usage_is_in_stats_and_in_metrics_by_key_name(two_tenants, api):
    a_record, a, b_record, _ = two_tenants
    out = io.StringIO()
    call_command("stats", "--by-key", "--json", stdout=out)
    rows = json.loads(out.getvalue())
    assert {(r["key_name"], r["model"], r["completion_tokens"]) for r in rows} >= {
        ("blog", "fake-llm", 2)
    }
    metrics = api.get("/metrics").content.decode()
    shop, blog = f'key="shop",key_id="{a_record["id"]}"', f'key="blog",key_id="{b_record["id"]}"'
    assert f'sop_llm_key_prompt_tokens_total{{{shop},model="fake-llm"}} 9' in metrics
    assert f'sop_llm_key_tasks_total{{{blog},model="fake-llm"}} 1' in metrics
    assert a not in metrics


def test_local_generation_seconds_are_counted(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    record, key = issue("tasks", name="gpu-user")
    headers = {"Authorization": f"Bearer {key}"}
    created = requests.post(
        f"{base}/api/v1/tasks",
        json={
            "provider": "local",
            "model": "gemma",
            "prompt": "Once upon",
            "params": {"max_tokens": 8},
            "wait": 120,
        },
        headers=headers,
        timeout=180,
    ).json()
    assert created["status"] == "completed", created
    [row] = wait_for(
        lambda: requests.get(f"{base}/api/v1/usage", headers=headers, timeout=10).json()["usage"],
        what="usage",
    )
    assert row["key_id"] == record["id"] and row["tasks"] == 1
    assert row["completion_tokens"] == created["usage"]["completion_tokens"] > 0
    assert row["prompt_tokens"] == created["usage"]["prompt_tokens"] > 0
    assert row["generation_seconds"] > 0


def test_a_bootstrap_key_s_usage_is_labelled_by_its_bootstrap_name(remote, burst, api):
    api.post("/api/v1/tasks", body(remote), format="json")
    burst("remote")
    [row] = client_with(API_KEY).get("/api/v1/usage").json()["usage"]
    assert row["key_name"].startswith("bootstrap-") and API_KEY not in json.dumps(row)
