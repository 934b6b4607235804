"""Hostile input on every route of the URLconf (a new route is covered without editing this):
malformed values of every JSON type in every field of a valid body, malformed whole bodies,
hostile query strings and headers. Nothing may answer 5xx, and every refusal comes in the
route's own error shape (OpenAI's on /v1, ours elsewhere; pages for people may answer HTML)."""

import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import API_KEY

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
PAGES = ("/signin/", "/signout/", "/monitor/", "/api/docs/", "/metrics")
DEEP = "__DEEP__"
RAW = {"__NAN__": "NaN", "__INF__": "Infinity", "__NINF__": "-Infinity", "__HUGE__": "1e999"}
RAW |= {"__SURROGATE__": '"\\ud800"', DEEP: "[" * 5000 + "]" * 5000}
HOSTILE = [
    None,
    True,
    "true",
    0,
    -1,
    1.5,
    2**63,
    10**30,
    -(10**30),
    "",
    "x" * 100_000,
    "a\u0000b",
    "\u202e\ufeff",
    [],
    [1, 2],
    [[[]]],
    {},
    {"a": {"b": 1}},
    "http://example.com:99999/",
    "http://[::1/",
    "ftp://example.com/",
    *RAW,
]
# A valid body per route that takes one; every other route gets GENERIC.
GENERIC = {"field": "value", "number": 1, "list": [1], "object": {"a": 1}}
BASES = {
    "/api/v1/tasks": {
        "provider": "openai_compatible",
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "params": {"max_tokens": 5, "temperature": 0.5, "stop": ["\n"], "seed": 1},
        "options": {"base_url": "http://127.0.0.1:9/v1", "headers": {"X-A": "b"}},
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        "fallback": [{"provider": "openai", "model": "gpt-4o-mini"}],
        "webhook_url": "http://127.0.0.1:9/hook",
        "idempotency_key": "k",
        "priority": 1,
        "deadline_seconds": 60,
        "timeout_seconds": 60,
        "metadata": {"a": 1},
    },
    "/api/v1/models/load": {"model": "gemma", "n_ctx": 512, "flash_attn": False, "wait_seconds": 0},
    "/api/v1/models/unload": {"wait_seconds": 0},
    "/api/v1/grammars/check": {"schema": {"type": "object"}, "provider": "openai"},
    "/api/v1/webhooks/dead-letters/replay": {"task_id": "nope"},
    # stream: an accepted body answers at once instead of waiting for a worker that is not there
    "/v1/chat/completions": {
        "model": "openai_compatible/m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "max_tokens": 5,
        "temperature": 0.5,
        "stop": "\n",
        "metadata": {"a": 1},
        "fallbacks": ["openai/gpt-4o-mini"],
    },
    "/v1/completions": {"model": "openai_compatible/m", "prompt": "hi", "stream": True, "seed": 1},
    "/v1/messages": {
        "model": "openai_compatible/m",
        "max_tokens": 5,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
        "stop_sequences": ["\n"],
        "metadata": {"user_id": "u"},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto"},
    },
    "/v1/messages/count_tokens": {
        "model": "local/gemma",
        "messages": [{"role": "user", "content": "hi"}],
        "system": "be brief",
    },
    "/v1/messages/batches": {
        "requests": [
            {
                "custom_id": "a",
                "params": {
                    "model": "openai_compatible/m",
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            }
        ]
    },
}
KEEP = {"stream"}  # null or false would make /v1 wait up to 10 minutes for the answer
BODIES = [
    "null",
    "42",
    '"text"',
    "[]",
    "[{}]",
    "{",
    '{"a": NaN}',
    '{"a": 1e999}',
    '{"a": "\\ud800"}',
    "[" * 100_000,
    '{"a": ' * 30_000 + "1" + "}" * 30_000,
    '"' + "x" * 500_000 + '"',
    b"\xff\xfe{}",
]
QUERIES = ["?limit=NaN", "?limit=99999999999999999999999", "?level=%00", "?task_id=" + "x" * 5000]
HEADERS = [
    {"HTTP_IDEMPOTENCY_KEY": "k" * 7000},
    {"HTTP_PREFER": "wait=\u00b2"},
    {"CONTENT_LENGTH": "\u00b2"},  # no real server passes it on; Django would int() it
    {"HTTP_AUTHORIZATION": "Bearer \u00ff" + "x" * 5000},
]


def _concrete(pattern: str) -> str:
    """A URL pattern (route or regex) with every parameter filled in."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "nope", pattern)  # regex groups first: they hold <name>
    path = re.sub(r"<[^>]+>", "nope", path)
    return path.replace("^", "").replace("$", "").replace("\\", "")


def routes(patterns=None, prefix: str = "") -> list[str]:
    found = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        here = prefix + _concrete(str(entry.pattern))
        if isinstance(entry, URLResolver):
            found += routes(entry.url_patterns, here)
        elif isinstance(entry, URLPattern):
            found.append("/" + here)
    return sorted(set(found))


ROUTES = routes()


def dumps(body) -> str:
    text = json.dumps(body)
    for placeholder, raw in RAW.items():
        text = text.replace(json.dumps(placeholder), raw)
    return text


def paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every place in a body: the objects and lists themselves, and their leaves."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list) and value:
        found += paths(value[0], (*prefix, 0))
    return found


def replaced(body, path: tuple, value):
    body = json.loads(json.dumps(body))
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


def assert_answered(route: str, response, what) -> None:
    assert response.status_code < 500, (route, what, response.content[:300])
    if response.status_code < 400:
        return
    if route in PAGES and not response.get("Content-Type", "").startswith("application/json"):
        return
    body = json.loads(response.content)
    error = body["error"]
    if route.startswith("/v1/messages"):  # Anthropic's shape
        assert body["type"] == "error" and set(error) == {"type", "message"}, (route, what, body)
    elif route.startswith("/v1/"):
        assert set(error) == {"message", "type", "param", "code"}, (route, what, error)
    else:
        assert {"code", "message", "field"} <= set(error), (route, what, error)
    assert isinstance(error["message"], str) and error["message"]


@pytest.fixture
def http() -> Client:
    return Client(raise_request_exception=False)


def test_the_route_list_comes_from_the_urlconf():
    assert {"/api/v1/tasks", "/api/v1/tasks/nope/report", "/v1/chat/completions"} <= set(ROUTES)
    assert {"/signin/", "/api/v1/models/jobs/nope", "/health"} <= set(ROUTES)


@pytest.mark.parametrize("route", ROUTES)
def test_no_hostile_value_in_any_field_of_a_body_is_a_5xx(http, route):
    base = BASES.get(route, GENERIC)
    for path in paths(base):
        if path[-1] in KEEP:
            continue
        for value in HOSTILE:
            body = dumps(replaced(base, path, value))
            response = http.post(route, body, content_type="application/json", **AUTH)
            assert_answered(route, response, (path, str(value)[:40]))
            response.close()


@pytest.mark.parametrize("route", ROUTES)
def test_no_malformed_whole_body_is_a_5xx(http, route):
    for body in BODIES:
        for method in (http.post, http.put, http.patch, http.delete):
            response = method(route, body, content_type="application/json", **AUTH)
            assert_answered(route, response, (method.__name__, body[:40]))


@pytest.mark.parametrize("route", ROUTES)
def test_no_hostile_query_string_or_header_is_a_5xx(http, route):
    for query in QUERIES:
        assert_answered(route, http.get(route + query, **AUTH), query[:40])
    base = dumps(BASES.get(route, GENERIC))
    for headers in HEADERS:
        merged = {**AUTH, **headers}
        response = http.post(route, base, content_type="application/json", **merged)
        assert_answered(route, response, str(headers)[:60])
        response.close()


@pytest.mark.slow
def test_schemathesis_negative_fuzzing_finds_no_5xx_and_no_accepted_invalid_body(processes):
    """Bodies, queries and headers that break the OpenAPI schema (wrong types, missing or extra
    fields, out-of-range values) must be refused with a 4xx, never accepted or a 5xx."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    base = processes.web()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base}/api/schema/",
            "-H",
            f"Authorization: Bearer {API_KEY}",
            "--mode",
            "negative",
            "-n",
            "40",
            "--generation-deterministic",
            "--checks",
            "not_a_server_error,negative_data_rejection",
            "--phases",
            "fuzzing",
            "--request-timeout",
            "10",
            # load/unload wait for a GPU worker (the tests above cover them); monitor/logs reads
            # an empty ?level= as "no filter", lenient as query strings go (monitor/* is being
            # moved to sop_llm/core/telemetry; its no-5xx side is covered above)
            "--exclude-path-regex",
            "models/(load|unload)|monitor/logs",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:]
    assert "generated" in run.stdout
    print(run.stdout[-600:])
