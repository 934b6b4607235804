"""Who is calling: `Authorization: Bearer <key>`, or a signed cookie set by the sign-in page.

One policy, three doors: `ApiKeyAuthentication` for DRF views, `@api_key_required` for plain
and async views, `scope_client` for the WebSocket. Each also applies the per-key rate limit,
and a Redis outage while checking is a 503 in the route's own error shape.
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import parse_qs, urlsplit

import redis
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.cookie import parse_cookie
from rest_framework import authentication, exceptions, permissions, renderers
from rest_framework.authentication import CSRFCheck

from sop_llm.errors import ServiceError, json_error, redis_unavailable
from sop_llm.ratelimit import rate_limited

COOKIE_NAME = "sop_llm_key"
COOKIE_SALT = "sop-llm-signin"
COOKIE_MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class ApiClient:
    """The caller behind a key. `id` is a short hash: safe to log and to count by."""

    id: str
    is_authenticated: bool = True


def key_is_valid(candidate: str | None) -> bool:
    if not candidate:
        return False
    # Compare against every key, without an early exit, so timing says nothing about which.
    matched = False
    for key in settings.API_KEYS:
        matched |= hmac.compare_digest(candidate.encode(), key.encode())
    return matched


def client_for(key: str) -> ApiClient:
    return ApiClient(id=hashlib.sha256(key.encode()).hexdigest()[:12])


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def unsign_cookie(value: str) -> str | None:
    """The key inside a signed sign-in cookie value, or None (same check as Django's)."""
    request = HttpRequest()  # reuse Django's own cookie check (its salting changes by version)
    request.COOKIES = {COOKIE_NAME: value}
    return cookie_key(request)


def cookie_key(request) -> str | None:
    try:
        return request.get_signed_cookie(
            COOKIE_NAME, salt=COOKIE_SALT, max_age=COOKIE_MAX_AGE_SECONDS
        )
    except (KeyError, signing.BadSignature):
        return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if header:
            key = bearer_token(header)
            if not key_is_valid(key):
                raise exceptions.AuthenticationFailed("invalid API key")
            return client_for(key), key
        key = cookie_key(request._request)
        if key is None:
            return None
        if not key_is_valid(key):
            raise exceptions.AuthenticationFailed("the signed-in key is no longer valid")
        self._enforce_csrf(request)
        return client_for(key), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="sop-llm"'

    @staticmethod
    def _enforce_csrf(request) -> None:
        # A cookie rides along with cross-site requests; a bearer header does not.
        check = CSRFCheck(lambda req: None)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF check failed: {reason}")


class HasApiKey(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth is not None


class SignedInBrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API, whose login link points at our key sign-in page."""

    template = "sop_llm/api.html"


def _request_client(request, *, cookie: bool, token: str | None) -> ApiClient | None:
    key = bearer_token(request.headers.get("Authorization"))
    if key is None and cookie:
        key = cookie_key(request)
    if key_is_valid(key):
        return client_for(key)
    if token and key and hmac.compare_digest(key.encode(), token.encode()):
        return ApiClient(id="metrics-token")
    return None


def _gate(request, *, pages: bool, token: str | None) -> ServiceError | HttpResponse | None:
    """None when the request may go on (request.client set); else what to answer."""
    request.client = _request_client(request, cookie=pages, token=token)
    if request.client is None and pages:
        return HttpResponseRedirect(f"/signin/?next={request.path}")
    if request.client is None:
        return ServiceError("missing or invalid API key", code="unauthorized", status=401)
    try:
        return rate_limited(request.client.id)
    except (redis.ConnectionError, redis.TimeoutError):
        return redis_unavailable()


def api_key_required(
    view=None,
    *,
    respond: Callable[[ServiceError], HttpResponse] = json_error,
    pages: bool = False,
    token: Callable[[], str | None] = lambda: None,
):
    """The policy for views DRF does not serve. `pages`: people, who may use the sign-in
    cookie and are sent to sign in; `respond`: the route's error shape; `token`: another
    accepted bearer token (the scrape-only METRICS_TOKEN)."""

    def decorate(view):
        def answer(outcome):
            return outcome if isinstance(outcome, HttpResponse) else respond(outcome)

        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request, *args, **kwargs):
                gate = sync_to_async(_gate, thread_sensitive=False)
                outcome = await gate(request, pages=pages, token=token())
                return answer(outcome) if outcome else await view(request, *args, **kwargs)

            return async_wrapper

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            outcome = _gate(request, pages=pages, token=token())
            return answer(outcome) if outcome else view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def scope_client(scope: dict) -> ApiClient | None:
    """The WebSocket's caller: a bearer header, `?token=`, or the sign-in cookie from our own
    origin (a cookie rides along cross-site, so only same-origin is trusted)."""
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
    query = parse_qs(scope.get("query_string", b"").decode())
    key = bearer_token(headers.get("authorization")) or (query.get("token") or [None])[0]
    if key is None:
        cookie = parse_cookie(headers.get("cookie", "")).get(COOKIE_NAME)
        same_origin = urlsplit(headers.get("origin", "")).netloc == headers.get("host")
        key = unsign_cookie(cookie) if cookie and same_origin else None
    return client_for(key) if key_is_valid(key) else None
