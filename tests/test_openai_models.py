"""`GET /v1/models` and `GET /v1/models/{id}`: OpenAI's model objects, OpenAI's 404, and the
catalog open to any valid key, as the README says (issue 25, items 7 and 10)."""

import pytest

from tests.conftest import API_KEY
from tests.keyring import client_with, issue


@pytest.fixture
def admin():
    return client_with(API_KEY)


@pytest.mark.parametrize("model_id", ["gemma", "gemma-3-270m-q4_k_m", "local/gemma-3-270m-q4_k_m"])
def test_a_listed_model_is_retrieved_as_openai_s_model_object(admin, model_id):
    listed = {m["id"] for m in admin.get("/v1/models").json()["data"]}
    assert model_id in listed
    response = admin.get(f"/v1/models/{model_id}")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": "sop-llm",
    }


@pytest.mark.parametrize("model_id", ["nope", "openai/gpt-4o-mini", "local/nope", "%3Cb%3E"])
def test_an_unknown_model_id_is_a_404_in_openai_s_error_shape(admin, model_id):
    response = admin.get(f"/v1/models/{model_id}")
    assert response.status_code == 404, response.content
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("scope", ["tasks", "monitor", "models"])
def test_any_valid_key_reads_the_openai_catalog(scope):
    client = client_with(issue(scope, name=f"only-{scope}")[1])
    assert client.get("/v1/models").status_code == 200
    assert client.get("/v1/models/gemma").json()["id"] == "gemma"


def test_the_openai_catalog_still_needs_a_valid_key(anon):
    response = anon.get("/v1/models/gemma")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
