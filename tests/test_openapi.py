"""The OpenAPI schema: generated without warnings, valid, and true to the routes."""

import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, child_env


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    out = tmp_path_factory.mktemp("schema") / "schema.yml"
    run = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(out),
        ],
        cwd=ROOT,
        env=child_env("schema:"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr  # no warnings, valid OpenAPI 3
    return yaml.safe_load(out.read_text())


def test_every_endpoint_of_the_api_is_documented(schema):
    assert set(schema["paths"]) >= {
        "/api/v1/tasks",
        "/api/v1/tasks/{id}",
        "/api/v1/tasks/{id}/report",
        "/api/v1/tasks/{id}/cancel",
        "/api/v1/models",
        "/api/v1/models/load",
        "/api/v1/models/unload",
        "/api/v1/models/status",
        "/api/v1/monitor/status",
        "/api/v1/monitor/queue",
        "/api/v1/monitor/logs",
        "/api/v1/grammars",
        "/api/v1/grammars/check",
    }


def test_the_openai_routes_ready_and_metrics_are_documented_with_their_shapes(schema):
    paths = schema["paths"]
    assert set(paths) >= {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/files",
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/cancel",
        "/ready",
        "/metrics",
        "/health",
    }
    chat = paths["/v1/chat/completions"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert {"model", "messages"} <= set(request["required"])
    assert {"tools", "response_format", "stream"} <= set(request["properties"])
    answer = chat["responses"]["200"]["content"]
    assert answer["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    assert "text/event-stream" in answer
    assert chat["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OpenAIError"
    )
    model = paths["/v1/models/{model_id}"]["get"]["responses"]
    assert model["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIModel")
    assert "404" in model and "/OpenAIError" in str(model["403"])  # OpenAI's shape on /v1
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert paths["/ready"]["get"]["responses"]["200"]["content"]["application/json"]
    assert paths["/health"]["get"].get("security") in (None, [], [{}])  # no key


def test_every_documented_endpoint_exists(schema, api):
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{\w+\}", "nope", path)
        for method in operations:
            if method not in ("get", "post"):
                continue
            response = getattr(api, method)(url, {"wait_seconds": 0}, format="json")
            body = (
                response.json() if response["Content-Type"].startswith("application/json") else {}
            )
            no_route = body.get("error", {}).get("message", "").startswith("no such endpoint")
            assert not no_route and response.status_code != 405, (method, path)


def test_task_shapes_are_fully_described(schema):
    components = schema["components"]["schemas"]
    task = components["Task"]["properties"]
    assert task["result"]["allOf"][0]["$ref"].endswith("/Result") or "Result" in str(task["result"])
    assert "Usage" in str(task["usage"]) and "TaskError" in str(task["error"])
    report = components["TaskReport"]["properties"]
    assert "Attempt" in str(report["attempts"]) and "Timings" in str(report["timings"])
    create = schema["paths"]["/api/v1/tasks"]["post"]
    assert {"202", "400", "401", "409", "429", "503"} <= set(create["responses"])
    assert create["requestBody"]["content"]["application/json"]["examples"]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_the_schema_and_swagger_ui_are_served_behind_the_key(api, anon):
    assert anon.get("/api/schema/").status_code == 401
    assert api.get("/api/schema/").json()["openapi"].startswith("3.")
    assert anon.get("/api/docs/").status_code == 302  # a page: to the sign-in page
    page = api.get("/api/docs/")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    assert b"cdn" not in page.content.lower()  # assets come from the package, not a CDN
