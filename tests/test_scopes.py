"""Every route declares its scope, and each route answers each scope as it declares: a key
without the scope is a 403 naming it; with it (or admin) it gets past the policy."""

import asyncio
import re

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern, URLResolver, get_resolver

from sop_llm.access.auth import scope_declared
from sop_llm.access.principals import PUBLIC, SCOPES
from sop_llm.asgi import application
from tests.keyring import bearer, client_with, issue


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def _path(route: str) -> str:
    """A concrete path for a route: each parameter (path converter or regex group) is 'x'."""
    route = re.sub(r"\(\?P<\w+>[^)]*\)|<[^>]+>", "x", route)
    return "/" + route.replace("^", "").replace("$", "")


def _declared(callback) -> tuple[str, ...] | None:
    # A plain view carries it; a DRF view (or a wrapper of one) declares it on its class.
    target = callback if hasattr(callback, "required_scope") else getattr(callback, "cls", None)
    return scope_declared(target) if target is not None else None


ROUTES = sorted(
    {(route, callback) for route, callback in _walk(get_resolver().url_patterns)},
    key=lambda pair: pair[0],
)
WEBSOCKETS = [
    (str(r.pattern), r.callback) for r in application.application_mapping["websocket"].routes
]


def test_the_table_covers_the_api_the_openai_routes_and_the_websocket():
    paths = {route for route, _ in ROUTES}
    assert {"api/v1/tasks", "v1/chat/completions", "api/v1/keys", "metrics"} <= paths
    assert [route for route, _ in WEBSOCKETS] == ["ws/monitor"]


@pytest.mark.parametrize("route,callback", ROUTES, ids=[route for route, _ in ROUTES])
def test_every_route_declares_a_scope(route, callback):
    declared = _declared(callback)
    assert declared is not None, f"{route} declares no scope"
    assert set(declared) <= set(SCOPES), f"{route} declares an unknown scope {declared}"


@pytest.mark.parametrize("route,consumer", WEBSOCKETS)
def test_every_websocket_route_declares_a_scope(route, consumer):
    assert set(consumer.consumer_class.required_scope) <= set(SCOPES)


@pytest.fixture
def keys_by_scope():
    return {scope: issue(scope, name=f"only-{scope}")[1] for scope in SCOPES}


@pytest.mark.parametrize("route,callback", ROUTES, ids=[route for route, _ in ROUTES])
def test_each_route_answers_each_scope_as_declared(route, callback, keys_by_scope):
    declared = _declared(callback)
    for scope, key in keys_by_scope.items():
        response = client_with(key).get(_path(route), HTTP_ACCEPT="application/json")
        allowed = declared == PUBLIC or scope == "admin" or scope in declared
        if allowed:
            assert response.status_code not in (401, 403), (route, scope, response.content)
        else:
            assert response.status_code == 403, (route, scope, response.status_code)
            assert scope_named(response.json(), declared), (route, response.json())


def scope_named(body: dict, declared: tuple[str, ...]) -> bool:
    error = body["error"]
    named = "lacks the" in error["message"] and all(s in error["message"] for s in declared)
    if body.get("type") == "error":  # Anthropic's shape (its door): the type, no code
        return named and error["type"] == "permission_error"
    return named and error["code"] == "missing_scope"


@pytest.mark.parametrize("scope", SCOPES)
def test_the_websocket_answers_each_scope_as_declared(scope, keys_by_scope):
    async def scenario():
        socket = WebsocketCommunicator(
            application, "/ws/monitor", headers=bearer(keys_by_scope[scope])
        )
        connected, _ = await socket.connect()
        assert connected
        if scope == "models":
            assert await socket.receive_output(timeout=5) == {
                "type": "websocket.close",
                "code": 4403,
            }
        else:
            await socket.send_to('{"types": ["task.queued"]}')
            assert '"filter.ok"' in await socket.receive_from(timeout=5)
            await socket.disconnect()

    asyncio.run(scenario())


def test_a_missing_scope_on_the_openai_routes_is_openai_s_own_error_shape(keys_by_scope):
    response = client_with(keys_by_scope["monitor"]).post("/v1/chat/completions", {}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == "missing_scope"
    assert "tasks scope" in error["message"]


def test_a_bootstrap_key_is_an_admin_key(api):
    assert api.get("/api/v1/keys").status_code == 200


def test_a_view_that_declares_no_scope_is_closed_even_to_an_admin_key():
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory
    from rest_framework.views import APIView

    from tests.conftest import API_KEY

    class Forgotten(APIView):
        def get(self, request):
            return Response({"open": True})

    request = APIRequestFactory().get("/x", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    response = Forgotten.as_view()(request)
    assert response.status_code == 403
    assert response.data["error"]["message"] == "Forgotten declares no scope"
