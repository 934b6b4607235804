"""Static API keys: `Authorization: Bearer <key>`, or a signed cookie set by the sign-in page."""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from rest_framework import authentication, exceptions, permissions, renderers
from rest_framework.authentication import CSRFCheck

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
