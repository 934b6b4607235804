"""Who is calling: `Authorization: Bearer <key>` (or Anthropic's `x-api-key: <key>` on the
views outside DRF), or a signed cookie set by the sign-in page.

One policy, three doors: `ApiKeyAuthentication` + `ScopeRequired` for DRF views,
`@api_key_required(scope=...)` for plain and async views, `scope_client` for the WebSocket. The
caller is a `Principal` (sop_llm.access.principals), request.user on every door. Every route
declares its scope; each door also applies the per-key rate limit, and a Redis outage while
checking is a 503 in the route's own error shape.
"""

import hmac
from collections.abc import Callable
from functools import wraps
from urllib.parse import parse_qs, urlsplit

import redis
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.cookie import parse_cookie
from rest_framework import authentication, exceptions, permissions, renderers
from rest_framework.authentication import CSRFCheck

from sop_llm.access.principals import (
    PUBLIC,
    AuthError,
    Principal,
    bootstrap_principal_for,
    principal_for,
    scope_refusal,
)
from sop_llm.access.ratelimit import rate_limited, rpm_of
from sop_llm.core.errors import ServiceError, json_error, redis_unavailable

COOKIE_NAME = "sop_llm_key"
COOKIE_SALT = "sop-llm-signin"
COOKIE_MAX_AGE_SECONDS = 12 * 3600


def key_is_valid(candidate: str | None) -> bool:
    """For the sign-in page: does this key open anything now?"""
    try:
        principal_for(candidate)
    except AuthError:
        return False
    return True


def scope_declared(view) -> tuple[str, ...] | None:
    """The scopes a view declares (`required_scope`: a scope, or a tuple of them any one of
    which will do); None when it declares none, which the policy refuses (fails closed)."""
    declared = getattr(view, "required_scope", None)
    if declared is None:
        return None
    return (declared,) if isinstance(declared, str) else tuple(declared)


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
            return _drf_principal(bearer_token(header)), "bearer"
        key = cookie_key(request._request)
        if key is None:
            return None
        principal = _drf_principal(key)
        self._enforce_csrf(request)
        return principal, "cookie"

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


def _drf_principal(key: str | None) -> Principal:
    try:
        return principal_for(key)
    except AuthError as exc:
        raise exceptions.AuthenticationFailed(exc.message) from None


class ScopeRequired(permissions.BasePermission):
    """Every DRF view declares `required_scope`; a key without it is a 403 naming it."""

    def has_permission(self, request, view) -> bool:
        accepted = scope_declared(view)
        if accepted is None:
            raise exceptions.PermissionDenied(f"{type(view).__name__} declares no scope")
        if accepted == PUBLIC:
            return True
        if request.auth is None:
            return False  # DRF answers 401: not authenticated
        if not request.user.allows(accepted):
            raise scope_refusal(accepted)  # the same 403 as the other doors give
        return True


class SignedInBrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API, whose login link points at our key sign-in page."""

    template = "sop_llm/api.html"


METRICS_SCRAPER = Principal(id="metrics-token", name="metrics-token", scopes=frozenset())


def _request_key(request, *, cookie: bool) -> str | None:
    key = bearer_token(request.headers.get("Authorization"))
    if key is None:  # Anthropic's clients send their key so
        key = request.headers.get("X-Api-Key") or None
    if key is None and cookie:
        key = cookie_key(request)
    return key


def _request_principal(request, *, cookie: bool, token: str | None) -> Principal:
    key = _request_key(request, cookie=cookie)
    if token and key and hmac.compare_digest(key.encode(), token.encode()):
        return METRICS_SCRAPER  # scrape-only: passes the metrics route, nothing else
    return principal_for(key)


def _gate_in_process(request, *, pages: bool, token: str | None) -> bool:
    """Can the gate answer without Redis: the metrics token, or a bootstrap key with no rate
    limit? Then an async route checks it on the event loop instead of a thread hop."""
    key = _request_key(request, cookie=pages)
    if token and key and hmac.compare_digest(key.encode(), token.encode()):
        return True
    principal = bootstrap_principal_for(key)
    return principal is not None and not rpm_of(principal)


def _gate(
    request, *, scope: tuple[str, ...], pages: bool, token: str | None
) -> ServiceError | HttpResponse | None:
    """None when the request may go on (request.user set); else what to answer."""
    try:
        principal = _request_principal(request, cookie=pages, token=token)
    except AuthError as exc:
        if pages:
            return HttpResponseRedirect(f"/signin/?next={request.path}")
        return exc
    except (redis.ConnectionError, redis.TimeoutError):
        return redis_unavailable()
    request.user = principal
    if principal is not METRICS_SCRAPER and not principal.allows(scope):
        return scope_refusal(scope)
    try:
        return rate_limited(principal)
    except (redis.ConnectionError, redis.TimeoutError):
        return redis_unavailable()


def api_key_required(
    view=None,
    *,
    scope: str | tuple[str, ...],
    respond: Callable[[ServiceError], HttpResponse] = json_error,
    pages: bool = False,
    token: Callable[[], str | None] = lambda: None,
):
    """The policy for views DRF does not serve. `scope`: what the route declares (any one of
    them lets a key in; admin always does); `pages`: people, who may use the sign-in
    cookie and are sent to sign in; `respond`: the route's error shape; `token`: another
    accepted bearer token (the scrape-only METRICS_TOKEN)."""

    accepted = (scope,) if isinstance(scope, str) else tuple(scope)

    def decorate(view):
        def answer(outcome):
            return outcome if isinstance(outcome, HttpResponse) else respond(outcome)

        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request, *args, **kwargs):
                extra = token()
                if _gate_in_process(request, pages=pages, token=extra):
                    outcome = _gate(request, scope=accepted, pages=pages, token=extra)
                else:  # a managed key's lookup or a rate limit: Redis, off the event loop
                    gate = sync_to_async(_gate, thread_sensitive=False)
                    outcome = await gate(request, scope=accepted, pages=pages, token=extra)
                return answer(outcome) if outcome else await view(request, *args, **kwargs)

            async_wrapper.required_scope = accepted
            return async_wrapper

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            outcome = _gate(request, scope=accepted, pages=pages, token=token())
            return answer(outcome) if outcome else view(request, *args, **kwargs)

        wrapper.required_scope = accepted
        return wrapper

    return decorate(view) if view is not None else decorate


def scope_client(scope: dict) -> Principal | None:
    """The WebSocket's caller: a bearer header, `?token=`, or the sign-in cookie from our own
    origin (a cookie rides along cross-site, so only same-origin is trusted)."""
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
    query = parse_qs(scope.get("query_string", b"").decode())
    key = bearer_token(headers.get("authorization")) or (query.get("token") or [None])[0]
    if key is None:
        cookie = parse_cookie(headers.get("cookie", "")).get(COOKIE_NAME)
        same_origin = urlsplit(headers.get("origin", "")).netloc == headers.get("host")
        key = unsign_cookie(cookie) if cookie and same_origin else None
    try:
        return principal_for(key)
    except AuthError:
        return None
