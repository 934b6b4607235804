"""The OpenAI-compatible front door, driven by the official `openai` SDK over real HTTP."""

import json

import openai
import pytest
import requests

from tests.conftest import API_KEY, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def service(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    return base


@pytest.fixture
def client(service):
    return openai.OpenAI(base_url=f"{service}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def test_a_chat_completion_from_the_local_model(client, service):
    raw = client.chat.completions.with_raw_response.create(
        model="gemma",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=12,
        temperature=0,
        seed=1,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0
    task_id = raw.headers["X-SOP-Task-Id"]
    report = requests.get(
        f"{service}/api/v1/tasks/{task_id}/report", headers=AUTH, timeout=5
    ).json()
    assert report["status"] == "completed" and report["provider"] == "local"


def test_a_plain_completion_with_an_explicit_provider_prefix(client):
    completion = client.completions.create(
        model="local/gemma-3-270m-q4_k_m",
        prompt="The capital of France is",
        max_tokens=8,
        temperature=0,
        seed=2,
    )
    assert completion.choices[0].text and completion.usage.completion_tokens == 8


def test_a_streamed_chat_arrives_as_chunks_ending_with_usage(client, service):
    stream = client.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Tell me a story."}],
        max_tokens=40,
        temperature=0.7,
        seed=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 5
    assert finishes[-1] in ("stop", "length") and chunks[-1].usage.completion_tokens > 0
    task_id = chunks[0].id.removeprefix("chatcmpl-")
    task = requests.get(f"{service}/api/v1/tasks/{task_id}", headers=AUTH, timeout=5).json()
    assert text == task["result"]["text"]


def test_json_schema_output_validates(client):
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["city", "rank"],
        "properties": {
            "city": {"type": "string", "maxLength": 30},
            "rank": {"type": "integer", "minimum": 1, "maximum": 10},
        },
    }
    completion = client.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "A city as JSON."}],
        max_tokens=60,
        temperature=1.0,
        seed=4,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    import jsonschema

    jsonschema.validate(json.loads(completion.choices[0].message.content), schema)


def test_a_wrong_key_is_a_401_in_openai_s_shape(service):
    bad = openai.OpenAI(base_url=f"{service}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_an_unknown_model_is_a_404_in_openai_s_shape(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["code"] == "model_not_found"


def test_bad_input_is_a_400_naming_the_parameter(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemma", max_tokens=-1, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["param"] == "max_tokens"  # OpenAI's name, not ours (params.*)


def test_the_models_list_names_the_catalog(client):
    ids = {m.id for m in client.models.list()}
    assert {"gemma", "gemma-3-270m-q4_k_m", "local/gemma-3-270m-q4_k_m"} <= ids


def test_prefer_wait_returns_the_finished_task(service):
    response = requests.post(
        f"{service}/api/v1/tasks",
        timeout=60,
        headers={**AUTH, "Prefer": "wait=30"},
        json={"provider": "local", "model": "gemma", "prompt": "Hi", "params": {"max_tokens": 4}},
    )
    assert response.status_code == 200 and response.headers["Preference-Applied"] == "wait=30"
    assert response.json()["status"] == "completed" and response.json()["result"]["text"]


def test_a_wait_shorter_than_the_generation_returns_the_running_task(service):
    response = requests.post(
        f"{service}/api/v1/tasks",
        timeout=60,
        headers=AUTH,
        json={
            "provider": "local",
            "model": "gemma",
            "prompt": "Once upon a time",
            "params": {"max_tokens": 400, "temperature": 0.8},
            "wait": 1,
        },
    )
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "processing")
    requests.post(
        f"{service}/api/v1/tasks/{response.json()['task_id']}/cancel", headers=AUTH, timeout=5
    )


def test_a_client_that_drops_a_stream_cancels_its_task(service):
    response = requests.post(
        f"{service}/v1/completions",
        stream=True,
        timeout=60,
        headers=AUTH,
        json={
            "model": "gemma",
            "prompt": "Once upon a time",
            "max_tokens": 400,
            "temperature": 0.8,
            "stream": True,
        },
    )
    task_id = response.headers["X-SOP-Task-Id"]
    lines = response.iter_lines()
    while not next(lines).startswith(b"data: {"):
        pass
    response.close()  # the client goes away mid-stream

    def final():
        task = requests.get(f"{service}/api/v1/tasks/{task_id}", headers=AUTH, timeout=5).json()
        return task if task["status"] in ("completed", "failed", "cancelled") else None

    task = wait_for(final, what="the dropped stream's task to end", timeout=30)
    assert task["status"] == "cancelled"
    assert task["usage"] is None or task["usage"]["completion_tokens"] < 400
