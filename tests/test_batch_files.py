"""`/v1/files`: OpenAI's File objects, kept in Redis, each visible to its owner only."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tests.test_batches import jsonl, line, upload

OTHER_KEY = "test-key-secondary-0002"


@pytest.fixture
def other() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {OTHER_KEY}")
    return client


def post_file(api, content: bytes, **form):
    data = {"purpose": "batch", "file": SimpleUploadedFile("in.jsonl", content), **form}
    return api.post("/v1/files", data, format="multipart")


def test_an_upload_is_a_file_object_that_reads_back_byte_for_byte(api, settings):
    content = jsonl([line("a"), line("b")])
    created = upload(api, content, name="prompts.jsonl")
    assert created["object"] == "file" and created["id"].startswith("file-")
    assert created["bytes"] == len(content) and created["filename"] == "prompts.jsonl"
    assert created["purpose"] == "batch" and created["status"] == "processed"
    assert created["expires_at"] - created["created_at"] == settings.SESSION_TTL_HOURS * 3600
    assert api.get(f"/v1/files/{created['id']}").json() == created
    assert api.get(f"/v1/files/{created['id']}/content").content == content
    ttl = get_redis().ttl(keys.file_content(created["id"]))
    assert 0 < ttl <= settings.SESSION_TTL_HOURS * 3600


def test_a_listing_is_newest_first_and_pages_with_after(api):
    ids = [upload(api, jsonl([line(str(n))]))["id"] for n in range(3)]
    listed = api.get("/v1/files").json()
    assert [f["id"] for f in listed["data"]] == ids[::-1] and listed["has_more"] is False
    page = api.get("/v1/files", {"limit": 1, "after": ids[2]}).json()
    assert [f["id"] for f in page["data"]] == [ids[1]] and page["has_more"] is True


def test_a_deleted_file_is_gone(api):
    file_id = upload(api, jsonl([line("a")]))["id"]
    assert api.delete(f"/v1/files/{file_id}").json() == {
        "id": file_id,
        "object": "file",
        "deleted": True,
    }
    assert api.get(f"/v1/files/{file_id}").status_code == 404
    assert api.get("/v1/files").json()["data"] == []


def test_another_owners_file_is_not_found_and_not_listed(api, other):
    file_id = upload(api, jsonl([line("a")]))["id"]
    for response in (
        other.get(f"/v1/files/{file_id}"),
        other.get(f"/v1/files/{file_id}/content"),
        other.delete(f"/v1/files/{file_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"No such File object: {file_id}"
    assert other.get("/v1/files").json()["data"] == []
    assert api.get(f"/v1/files/{file_id}").status_code == 200


def test_a_file_over_the_size_limit_is_a_413_naming_the_setting(api, settings):
    settings.BATCH_MAX_FILE_BYTES = 2048
    response = post_file(api, b"x" * 2049)
    assert response.status_code == 413
    error = response.json()["error"]
    assert "BATCH_MAX_FILE_BYTES" in error["message"] and error["code"] == "file_too_large"


def test_a_file_with_too_many_lines_is_a_400_naming_the_setting(api, settings):
    settings.BATCH_MAX_LINES = 2
    response = post_file(api, jsonl([line("a"), line("b"), line("c")]))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "BATCH_MAX_LINES" in error["message"] and error["code"] == "too_many_lines"


def test_an_upload_may_be_larger_than_a_plain_request_body(api, settings):
    settings.MAX_REQUEST_BODY_BYTES = 4096
    content = jsonl([line(str(n)) for n in range(100)])
    assert len(content) > 4096
    assert upload(api, content)["bytes"] == len(content)


@pytest.mark.parametrize(
    "form,param",
    [({"purpose": "fine-tune"}, "purpose"), ({"expires_after[seconds]": "3600"}, None)],
)
def test_a_form_field_we_cannot_honour_is_refused(api, form, param):
    response = post_file(api, jsonl([line("a")]), **form)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == (param or "expires_after[seconds]")


def test_an_empty_file_is_refused(api):
    response = post_file(api, b"\n")
    assert response.status_code == 400 and response.json()["error"]["code"] == "empty_file"


def test_files_need_an_api_key(anon):
    response = anon.get("/v1/files")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    "bad,why",
    [("{not json", "not JSON"), ("[1, 2]", "not a JSON object"), ("", "not JSON")],
    ids=["not_json", "not_an_object", "blank"],
)
def test_an_upload_whose_line_is_not_a_json_object_is_a_400_naming_the_line(api, bad, why):
    response = post_file(api, jsonl([line("a"), bad, line("b")]))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("file", "invalid_file")
    assert error["message"].startswith(f"line 2 of the file is {why}")
    assert api.get("/v1/files").json()["data"] == []


def test_a_binary_upload_is_a_400_not_a_file_a_batch_fails_on_later(api):
    response = post_file(api, bytes(range(256)) * 4)
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


def test_an_upload_with_two_file_parts_is_refused_not_cut_to_the_first(api):
    parts = [SimpleUploadedFile(n, jsonl([line(n)])) for n in ("a.jsonl", "b.jsonl")]
    response = api.post("/v1/files", {"purpose": "batch", "file": parts}, format="multipart")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == "file" and "2 times" in error["message"]
    assert api.get("/v1/files").json()["data"] == []
