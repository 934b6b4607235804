"""Every HTML page the service serves carries a Content-Security-Policy that lets only our own
script files run, and no page of ours needs inline script or inline handlers to work."""

import re

import pytest
from django.test import Client

from tests import test_hostile_input as hostile
from tests.conftest import API_KEY

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}", "HTTP_ACCEPT": "text/html"}
PAGES = {"/signin/", "/monitor/", "/api/docs/", "/api/v1/", "/api/v1/keys", "/api/v1/usage"}
REQUIRED = ("script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def html_answers() -> dict[str, object]:
    """Every route's GET (signed in and not, browsers' Accept), the HTML ones by path."""
    found = {}
    for route in sorted(set(hostile.ROUTES) | PAGES):
        for headers in (AUTH, {"HTTP_ACCEPT": "text/html"}):
            response = Client(raise_request_exception=False).get(route, **headers)
            if response.get("Content-Type", "").startswith("text/html"):
                found.setdefault(route, response)
            response.close()
    return found


@pytest.fixture(scope="module")
def pages() -> dict[str, object]:
    return html_answers()


def test_every_html_answer_carries_a_csp_that_forbids_inline_script(pages):
    assert set(pages) >= PAGES, "every page for people answers HTML"
    for route, response in pages.items():
        policy = response.get("Content-Security-Policy", "")
        assert all(part in policy for part in REQUIRED), (route, policy)
        script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
        assert "unsafe" not in script_src, (route, policy)


def test_no_page_needs_inline_script_or_inline_handlers(pages):
    for route, response in pages.items():
        html = response.content.decode()
        assert not INLINE_SCRIPT.findall(html), (route, INLINE_SCRIPT.findall(html))
        assert not INLINE_HANDLER.findall(html), (route, INLINE_HANDLER.findall(html))


def test_swagger_ui_s_init_script_is_a_file_of_its_own(client):
    page = client.get("/api/docs/", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    [init] = re.findall(r'<script src="([^"]*script[^"]*)"', page.content.decode())
    script = client.get(init.replace("&amp;", "&"), HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content
