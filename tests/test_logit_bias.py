"""`logit_bias` at submit (issue 26): honoured by the local provider, so its ids are checked
against the model's vocabulary (the size its GGUF header gives) and its values against OpenAI's
-100..100, each a 400 naming the field on both doors; remote providers refuse it."""

import json
import os
import shutil

import pytest
from django.test import Client

from tests.conftest import API_KEY, ROOT

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
GEMMA = (ROOT / "models" / "gemma-3-270m-q4_k_m.gguf").resolve()
GEMMA_VOCAB = 262_144
NAME = "gemma-3-270m-q4_k_m"


@pytest.fixture
def local_model(settings):
    """A MODELS_DIR of its own holding the real model (a hard link: no 250 MB copy)."""
    path = ROOT / "var" / "test-models" / settings.REDIS_KEY_PREFIX.replace(":", "-")
    path.mkdir(parents=True)
    os.link(GEMMA, path / GEMMA.name)
    settings.MODELS_DIR = path
    yield NAME
    shutil.rmtree(path)


def post(url: str, body: dict):
    client = Client(raise_request_exception=False)
    return client.post(url, json.dumps(body), content_type="application/json", **AUTH)


def native(model: str, bias: dict) -> dict:
    params = {"max_tokens": 8, "logit_bias": bias}
    return {"provider": "local", "model": model, "prompt": "hi", "params": params}


def chat(model: str, bias: dict) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "logit_bias": bias}


def test_a_local_task_with_a_logit_bias_inside_the_vocabulary_is_accepted(local_model):
    bias = {"0": -100, str(GEMMA_VOCAB - 1): 100, "106": 2.5}
    assert post("/api/v1/tasks", native(local_model, bias)).status_code == 202


def test_a_token_id_past_the_vocabulary_is_a_400_naming_logit_bias(local_model):
    response = post("/api/v1/tasks", native(local_model, {str(GEMMA_VOCAB): 1}))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "params.logit_bias" and str(GEMMA_VOCAB - 1) in error["message"]
    response = post("/v1/chat/completions", chat(local_model, {str(GEMMA_VOCAB): 1}))
    assert response.status_code == 400 and response.json()["error"]["param"] == "logit_bias"


@pytest.mark.parametrize("bias", [{"5": 100.5}, {"5": -101}, {"-5": 1}, {"5": "1"}, {"5": None}])
def test_a_bias_outside_minus_100_to_100_or_not_a_number_is_a_400(local_model, bias):
    response = post("/api/v1/tasks", native(local_model, bias))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"].startswith("params.logit_bias")


def test_a_remote_provider_refuses_logit_bias_by_name():
    body = {**native("m", {"5": 1}), "provider": "openai_compatible"}
    body["options"] = {"base_url": "http://127.0.0.1:9/v1"}
    response = post("/api/v1/tasks", body)
    assert response.status_code == 400 and response.json()["error"]["field"] == "params.logit_bias"
