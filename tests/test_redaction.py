"""Secrets are redacted by what they are: reports keep token counts, and lose every key."""

import json
import logging

import pytest

from sop_llm.core import keys
from sop_llm.core.redact import REDACTED, redact, scrub
from sop_llm.core.redis import get_redis
from sop_llm.core.telemetry.logs import flush_logs
from tests.fakes.servers import FakeServer, Reply, openai_chat, openai_error

REQUEST_KEY = "req-key-4f9a8b7c6d"  # shaped like nothing: only known as this request's key
ROUTE_PASS = "route-pass-5e6f7a8b"  # a header with an ordinary name
UPSTREAM_CREDENTIAL = "cred-9a8b7c6d5e4f"  # sent as "Bearer <it>", echoed alone
STRANGER_KEY = "sk-live-abcdefghijklmnop1234"  # nobody gave it to us; it looks like a key
STRANGER_BEARER = "tok2c3d4e5f6a7b8c9d"
SECRETS = [REQUEST_KEY, ROUTE_PASS, UPSTREAM_CREDENTIAL, STRANGER_KEY, STRANGER_BEARER]


def task_body(remote, **options) -> dict:
    return {
        "provider": "openai_compatible",
        "model": "fake-llm",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "params": {"max_tokens": 77, "top_k": 5, "temperature": 0.2, "stop": ["\n\n"]},
        "options": {"base_url": f"{remote.url}/v1", **options},
    }


def test_a_report_keeps_token_counts_and_sampling_params_visible(api, burst):
    with FakeServer() as remote:
        remote.reply(Reply(200, openai_chat("Paris.", prompt_tokens=9, completion_tokens=2)))
        task_id = api.post("/api/v1/tasks", task_body(remote), format="json").json()["task_id"]
        burst("remote")
    report = api.get(f"/api/v1/tasks/{task_id}/report").json()
    params = report["request"]["params"]
    assert (params["max_tokens"], params["top_k"], params["stop"]) == (77, 5, ["\n\n"])
    assert report["usage"]["prompt_tokens"] == 9 and report["usage"]["completion_tokens"] == 2
    assert REDACTED not in json.dumps(report)


def test_keys_and_header_values_echoed_by_a_remote_reach_no_report_log_or_event(api, burst):
    echo = (
        f"Incorrect API key provided: {REQUEST_KEY}. Route pass {ROUTE_PASS} refused; "
        f"upstream credential {UPSTREAM_CREDENTIAL}; also tried {STRANGER_KEY} and "
        f"Authorization: Bearer {STRANGER_BEARER}"
    )
    with FakeServer() as remote:
        remote.reply(openai_error(401, echo))
        headers = {"X-Route-Pass": ROUTE_PASS, "X-Upstream": f"Bearer {UPSTREAM_CREDENTIAL}"}
        body = task_body(remote, api_key=REQUEST_KEY, headers=headers)
        task_id = api.post("/api/v1/tasks", body, format="json").json()["task_id"]
        events = get_redis().pubsub()
        events.subscribe(keys.pubsub_events(), keys.pubsub_task(task_id))
        burst("remote")
        assert remote.seen[0].headers["X-Route-Pass"] == ROUTE_PASS  # the remote did get them
    flush_logs()
    published = json.dumps([m["data"] for m in iter(events.get_message, None)], default=str)
    task = api.get(f"/api/v1/tasks/{task_id}").json()
    report = api.get(f"/api/v1/tasks/{task_id}/report").content.decode()
    logs = api.get("/api/v1/monitor/logs?limit=1000").content.decode()
    assert task["status"] == "failed" and "Incorrect API key provided: ***" in report
    assert task_id in published and "Incorrect API key" in logs
    for secret in SECRETS:
        assert secret not in json.dumps(task) + report + logs + published, secret


@pytest.mark.parametrize(
    "field",
    ["api_key", "Authorization", "x-api-key", "password", "secret", "token", "access_token"],
)
def test_secret_fields_are_masked_by_their_whole_name(field):
    assert redact({"options": {field: "anything-at-all"}}) == {"options": {field: REDACTED}}


@pytest.mark.parametrize(
    "field", ["max_tokens", "prompt_tokens", "completion_tokens", "top_k", "idempotency_key"]
)
def test_fields_that_merely_mention_tokens_or_keys_stay_visible(field):
    assert redact({field: 256}) == {field: 256}


def test_every_header_value_is_masked_whatever_its_name():
    assert redact({"headers": {"X-Tenant-Route": "blue-7"}}) == {
        "headers": {"X-Tenant-Route": REDACTED}
    }


@pytest.mark.parametrize(
    ("text", "left"),
    [
        ("key sk-ant-api03-abcdefghijklmnop was refused", "key *** was refused"),
        ("Authorization: Bearer abc123def456ghi", "Authorization: Bearer ***"),
        (
            "POST https://hooks.example/x?token=abc123&page=2",
            "POST https://hooks.example/x?token=***&page=2",
        ),
        ("signed with whsec_c2VjcmV0LXNpZ25pbmcta2V5", "signed with ***"),
        (
            "Bearer tokens and Basic information are words",
            "Bearer tokens and Basic information are words",
        ),
    ],
)
def test_credential_shaped_text_is_masked_inside_free_text(text, left):
    assert scrub(text) == left


def test_the_service_s_own_api_keys_never_reach_a_log_line(api, settings):
    logging.getLogger("tasks").warning("client sent %s", settings.API_KEYS[0])
    flush_logs()
    logs = api.get("/api/v1/monitor/logs?limit=5").content.decode()
    assert "client sent ***" in logs and settings.API_KEYS[0] not in logs
