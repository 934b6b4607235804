"""Every endpoint needs a configured API key; errors are JSON in one shape."""

import pytest
from django.test import Client

from tests.conftest import API_KEY

PROTECTED = ["/api/v1/", "/api/v1/tasks/abc", "/api/v1/models", "/api/v1/models/status"]


@pytest.mark.parametrize("path", PROTECTED)
def test_it_refuses_a_request_without_a_key(anon, path):
    response = anon.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", PROTECTED)
def test_it_refuses_a_wrong_key(anon, path):
    anon.credentials(HTTP_AUTHORIZATION="Bearer sk-sop-" + "x" * 40)
    response = anon.get(path)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "unauthorized", "message": "invalid API key", "field": None}
    }


def test_it_refuses_a_malformed_key_saying_what_a_key_looks_like(anon):
    anon.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    response = anon.get("/api/v1/")
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("malformed API key")


def test_it_accepts_every_configured_key(anon, settings):
    for key in settings.API_KEYS:
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert anon.get("/api/v1/models/status").status_code == 200


def test_it_refuses_a_key_sent_with_another_scheme(anon):
    anon.credentials(HTTP_AUTHORIZATION=f"Basic {API_KEY}")
    assert anon.get("/api/v1/").status_code == 401


def test_the_browser_sign_in_keeps_the_key_in_a_signed_cookie():
    browser = Client(enforce_csrf_checks=True)
    form = browser.get("/signin/")
    token = form.cookies["csrftoken"].value
    response = browser.post(
        "/signin/", {"api_key": API_KEY, "next": "/api/v1/", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/api/v1/"
    cookie = response.cookies["sop_llm_key"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert API_KEY not in cookie.value.split(":")[-1]  # signed, and the signature is not the key
    page = browser.get("/api/v1/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"Sign out" in page.content


def test_the_sign_in_page_refuses_a_wrong_key():
    browser = Client()
    response = browser.post("/signin/", {"api_key": "nope"})
    assert response.status_code == 401 and b"not one of" in response.content
    assert "sop_llm_key" not in response.cookies


def test_a_tampered_cookie_is_not_a_key(anon):
    anon.cookies["sop_llm_key"] = f"{API_KEY}:forged:signature"
    assert anon.get("/api/v1/").status_code == 401


def test_an_unknown_path_is_a_json_404(api):
    response = api.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_async_route_checks_a_bootstrap_key_in_process_and_still_rate_limits_it(settings):
    # A bootstrap key with no rate limit needs no Redis: the gate runs on the event loop.
    client = Client(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    assert [client.get("/v1/models").status_code for _ in range(3)] == [200, 200, 200]
    settings.RATE_LIMIT_PER_MINUTE = 2  # a limit counts in Redis: the same key, through it
    codes = [client.get("/v1/models").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert Client().get("/v1/models").status_code == 401
