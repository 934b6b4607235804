"""Response-format fields clients send that we can honour (issue 25, item 7): a json_schema's
`description`, and `{"type": "json_object", "schema": ...}` (the older form of json_schema)."""

import json

import pytest
from django.test import Client
from rest_framework.exceptions import ValidationError

from grammars.formats import response_format_from
from models_gpu.engine.tools import prompt_request
from sop_llm.providers.openai_wire import _response_format
from sop_llm.providers.types import GenerateRequest, Message
from tasks.openai.protocol.requests import openai_request
from tasks.openai.serving.translate import task_data
from tasks.serializers import TaskCreateSerializer
from tests.conftest import API_KEY

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
DESCRIBED = {
    "type": "json_schema",
    "json_schema": {"name": "City", "description": "The city asked about", "schema": CITY},
}
OLD_FORM = {"type": "json_object", "schema": CITY}


def v1_task(response_format: dict) -> dict:
    """A /v1 chat body as the task serializer validates it (what the view hands on)."""
    body = {"model": "gemma", "messages": [{"role": "user", "content": "Where?"}]}
    body = openai_request({**body, "response_format": response_format}, chat=True)
    serializer = TaskCreateSerializer(data=task_data(body, chat=True))
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def test_a_json_schema_description_is_accepted_on_v1_and_kept():
    rf = v1_task(DESCRIBED)["response_format"]
    assert rf["json_schema"]["description"] == "The city asked about"


def test_a_json_schema_description_is_passed_to_openai():
    rf = response_format_from(v1_task(DESCRIBED)["response_format"])
    sent = _response_format(GenerateRequest(model="m", response_format=rf))
    assert sent["json_schema"]["description"] == "The city asked about"


def test_a_json_schema_description_guides_the_local_model_in_a_system_turn():
    rf = response_format_from(v1_task(DESCRIBED)["response_format"])
    request = GenerateRequest(model="m", messages=[Message("user", "Where?")], response_format=rf)
    first = prompt_request(request).messages[0]
    assert first.role == "system" and "The city asked about" in first.content


def test_json_object_with_a_schema_is_taken_as_json_schema_on_v1():
    rf = v1_task(OLD_FORM)["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == CITY


def test_json_object_with_a_schema_is_taken_as_json_schema_natively():
    body = {"provider": "local", "model": "gemma", "prompt": "x", "response_format": OLD_FORM}
    http = Client(raise_request_exception=False)
    response = http.post("/api/v1/tasks", json.dumps(body), content_type="application/json", **AUTH)
    assert response.status_code == 202, response.content
    from tasks.store import load

    stored = load(response.json()["task_id"]).request["response_format"]
    assert stored["type"] == "json_schema" and stored["json_schema"]["schema"] == CITY


@pytest.mark.parametrize(
    "response_format,param",
    [
        ({"type": "json_object", "schema": {"type": 5}}, "response_format.schema"),
        ({"type": "text", "schema": CITY}, "response_format.schema"),
    ],
)
def test_a_schema_beside_json_object_is_checked_like_json_schema(response_format, param):
    with pytest.raises(ValidationError) as refused:
        v1_task(response_format)
    assert "schema" in refused.value.detail["response_format"], refused.value.detail
