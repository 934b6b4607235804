"""Managed keys over the API and the command line: shown once, stored hashed, refused clearly."""

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from sop_llm.access.principals import digest_of
from sop_llm.core import keys
from sop_llm.core.redis import get_redis
from tests.conftest import wait_for
from tests.keyring import client_with, issue


def later(**delta) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


def test_an_admin_creates_a_key_that_is_shown_once_and_works_at_once(api):
    created = api.post(
        "/api/v1/keys",
        {"name": "team-a", "scopes": ["tasks"], "limits": {"rpm": 60, "max_priority": 5}},
        format="json",
    )
    assert created.status_code == 201
    record = created.json()
    assert record["key"].startswith("sk-sop-") and record["scopes"] == ["tasks"]
    assert record["limits"] == {
        "rpm": 60,
        "tokens_per_day": None,
        "max_queued": None,
        "max_priority": 5,
    }
    assert record["state"] == "active" and created["Location"] == f"/api/v1/keys/{record['id']}"
    listed = api.get("/api/v1/keys").json()["keys"]
    assert [k["id"] for k in listed] == [record["id"]] and "key" not in listed[0]
    assert "key" not in api.get(f"/api/v1/keys/{record['id']}").json()
    assert client_with(record["key"]).get("/api/v1/grammars").status_code == 200


def test_the_store_holds_the_key_s_hash_never_the_key(api):
    key = api.post("/api/v1/keys", {"name": "h", "scopes": ["tasks"]}, format="json").json()["key"]
    assert get_redis().exists(keys.api_key(digest_of(key)))
    assert not get_redis().exists(keys.api_key(key))


@pytest.mark.parametrize(
    "body,field,words",
    [
        ({"name": "x", "scopes": ["tasks", "root"]}, "scopes.1", '"root" is not a valid choice'),
        ({"name": "x", "scopes": []}, "scopes", "at least 1"),
        ({"name": "x", "scopes": "tasks"}, "scopes", "must be an array"),
        ({"name": "x y", "scopes": ["tasks"]}, "name", "letters, digits"),
        (
            {"name": "x", "scopes": ["tasks"], "expires_at": "2001-01-01T00:00:00Z"},
            "expires_at",
            "in the past",
        ),
        ({"name": "x", "scopes": ["tasks"], "expires_at": "soon"}, "expires_at", "format"),
        (
            {"name": "x", "scopes": ["tasks"], "limits": {"rpm": 0}},
            "limits.rpm",
            "greater than or equal to 1",
        ),
        (
            {"name": "x", "scopes": ["tasks"], "limits": {"rps": 3}},
            "limits.rps",
            "did you mean 'rpm'",
        ),
        ({"name": "x", "scopes": ["tasks"], "owner": "me"}, "owner", "unknown field"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, body, field, words):
    response = api.post("/api/v1/keys", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_a_name_clash_is_a_409_until_the_first_key_is_revoked(api):
    first = api.post("/api/v1/keys", {"name": "dup", "scopes": ["tasks"]}, format="json").json()
    clash = api.post("/api/v1/keys", {"name": "dup", "scopes": ["monitor"]}, format="json")
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "name_taken"
    api.delete(f"/api/v1/keys/{first['id']}")
    assert (
        api.post("/api/v1/keys", {"name": "dup", "scopes": ["tasks"]}, format="json").status_code
        == 201
    )


def test_a_non_admin_key_cannot_touch_the_key_routes():
    _, key = issue("tasks", "monitor", "models", name="almost-admin")
    client = client_with(key)
    for response in (
        client.get("/api/v1/keys"),
        client.post("/api/v1/keys", {"name": "mine", "scopes": ["admin"]}, format="json"),
        client.delete("/api/v1/keys/anything"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "this API key lacks the admin scope"


def test_a_revoked_key_is_refused_at_once(api):
    record, key = issue("tasks", name="leaked")
    client = client_with(key)
    assert client.get("/api/v1/grammars").status_code == 200
    revoked = api.delete(f"/api/v1/keys/{record['id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = client.get("/api/v1/grammars")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "this API key was revoked"
    again = api.patch(f"/api/v1/keys/{record['id']}", {"scopes": ["admin"]}, format="json")
    assert again.status_code == 409


def test_an_expired_key_is_refused(api):
    record = api.post(
        "/api/v1/keys",
        {"name": "brief", "scopes": ["tasks"], "expires_at": later(seconds=1)},
        format="json",
    ).json()
    client = client_with(record["key"])
    assert client.get("/api/v1/grammars").status_code == 200
    refused = wait_for(
        lambda: (r := client.get("/api/v1/grammars")).status_code == 401 and r,
        what="expiry",
        timeout=5,
    )
    assert refused.json()["error"]["message"].startswith("this API key expired at")
    assert api.get(f"/api/v1/keys/{record['id']}").json()["state"] == "expired"


def test_patch_changes_scopes_and_limits_for_the_next_request(api):
    record, key = issue("monitor", name="grows")
    client = client_with(key)
    assert client.get("/api/v1/tasks/abc").status_code == 403
    changed = api.patch(
        f"/api/v1/keys/{record['id']}",
        {"scopes": ["tasks"], "limits": {"max_queued": 3}},
        format="json",
    )
    assert changed.status_code == 200 and changed.json()["limits"]["max_queued"] == 3
    assert client.get("/api/v1/tasks/abc").status_code == 404
    assert api.get("/api/v1/keys/key_nope").status_code == 404


def test_patch_sets_and_clears_an_expiry(api):
    record, _ = issue("tasks", name="dated")
    path = f"/api/v1/keys/{record['id']}"
    dated = api.patch(path, {"expires_at": later(days=30)}, format="json").json()
    assert dated["expires_at"] is not None
    past = api.patch(path, {"expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert past.status_code == 400 and past.json()["error"]["field"] == "expires_at"
    assert api.patch(path, {"expires_at": None}, format="json").json()["expires_at"] is None
    assert api.patch(path, {"scopes": None}, format="json").status_code == 400


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_command_line_creates_lists_and_revokes_keys():
    created = json.loads(
        run("keys", "create", "ci-bot", "--scopes", "tasks,monitor", "--rpm", "30", "--json")
    )
    assert created["key"].startswith("sk-sop-") and created["scopes"] == ["monitor", "tasks"]
    human = run("keys", "list")
    assert "ci-bot" in human and "rpm=30" in human and created["key"] not in human
    [listed] = json.loads(run("keys", "list", "--json"))
    assert listed["id"] == created["id"] and "key" not in listed
    run("keys", "revoke", created["id"])
    assert client_with(created["key"]).get("/api/v1/grammars").status_code == 401


def test_the_command_line_refuses_bad_input_naming_the_field():
    with pytest.raises(CommandError, match=r"scopes.0: .*\"everything\" is not a valid choice"):
        run("keys", "create", "x", "--scopes", "everything")
    run("keys", "create", "taken", "--scopes", "tasks")
    with pytest.raises(CommandError, match="name_taken"):
        run("keys", "create", "taken", "--scopes", "tasks")
    with pytest.raises(CommandError, match="not_found"):
        run("keys", "revoke", "key_unknown")


def test_the_command_line_says_when_redis_is_unreachable(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with pytest.raises(CommandError, match="redis_unavailable"):
        run("keys", "list")
