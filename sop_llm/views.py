"""Process-level endpoints: liveness, readiness, and the browser sign-in page."""

import time
from functools import partial

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from sop_llm import __version__
from sop_llm.access.auth import (
    COOKIE_MAX_AGE_SECONDS,
    COOKIE_NAME,
    COOKIE_SALT,
    api_key_required,
    key_is_valid,
)
from sop_llm.access.principals import ANY_KEY, PUBLIC
from sop_llm.core.errors import ServiceError, json_error
from sop_llm.core.methods import require_methods
from sop_llm.core.procs import process_started_at
from sop_llm.core.redis import redis_ping
from sop_llm.core.schema import HEALTH, READY, documented

STARTED_AT = process_started_at()


def _not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    message = f"{request.method} is not allowed here"
    return json_error(ServiceError(message, code="method_not_allowed", status=405))


json_only = partial(require_methods, refuse=_not_allowed)  # our JSON error, not an HTML page


@documented(get=HEALTH)
@json_only("GET", "HEAD")
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Needs no key and touches nothing, for orchestrators."""
    return JsonResponse({"status": "ok", "version": __version__})


@documented(get=READY)
@json_only("GET", "HEAD")
@api_key_required(scope=ANY_KEY)
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: Redis answers within a second (503 with the reason otherwise). Needs a key."""
    reason = redis_ping(timeout=settings.READY_TIMEOUT_SECONDS)
    if reason:
        error = ServiceError(
            f"Redis is unreachable: {reason}",
            code="redis_unavailable",
            status=503,
            headers={"Retry-After": "1"},
        )
        return json_error(error)
    return JsonResponse({"status": "ready", "redis": "ok", "uptime_seconds": _uptime()})


health.required_scope = PUBLIC


def _uptime() -> float:
    return round(time.time() - STARTED_AT, 1)


def _safe_next(request: HttpRequest, target: str | None) -> str:
    ok = target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return target if ok else "/api/v1/"


@csrf_protect
@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest):
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.method == "GET":
        return render(request, "sop_llm/signin.html", {"next": next_url})
    if not key_is_valid(request.POST.get("api_key", "").strip()):
        context = {"next": next_url, "error": "That is not one of the service's API keys."}
        return render(request, "sop_llm/signin.html", context, status=401)
    response = HttpResponseRedirect(next_url)
    response.set_signed_cookie(
        COOKIE_NAME,
        request.POST["api_key"].strip(),
        salt=COOKIE_SALT,
        max_age=COOKIE_MAX_AGE_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure(),
    )
    return response


@json_only("GET")
def signout(request: HttpRequest):
    response = HttpResponseRedirect("/signin/")
    response.delete_cookie(COOKIE_NAME)
    return response


signin.required_scope = signout.required_scope = PUBLIC
