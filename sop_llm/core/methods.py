"""The one method check of the plain (non-DRF) views: another method is a 405 in the door's own
error shape, with the `Allow` header. Applied under the door's authentication, so a caller
without a key learns nothing of a route (401 first, as before)."""

from collections.abc import Callable
from functools import wraps

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse

# (request, "GET or POST") -> the door's 405 answer
Refuse = Callable[[HttpRequest, str], HttpResponse]


def require_methods(*methods: str, refuse: Refuse):
    allowed = " or ".join(methods)

    def refused(request: HttpRequest) -> HttpResponse | None:
        if request.method in methods:
            return None
        response = refuse(request, allowed)
        response["Allow"] = ", ".join(methods)
        return response

    def decorate(view):
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request, *args, **kwargs):
                refusal = refused(request)
                return refusal if refusal is not None else await view(request, *args, **kwargs)

            return async_wrapper

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            refusal = refused(request)
            return refusal if refusal is not None else view(request, *args, **kwargs)

        return wrapper

    return decorate
