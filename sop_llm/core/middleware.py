from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings

from sop_llm.core.errors import ServiceError, json_error_for


def _too_large(request):
    """413 for a body over the limit; 400 for a Content-Length that is not a number, which
    Django's request.body would pass to int() and fail on (a 500) on whatever route read it."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not (length.isascii() and length.isdigit()):  # isdigit() alone accepts "²"
        error = ServiceError("the Content-Length header is not a number", code="bad_request")
        return json_error_for(request, error)
    limit, name = _limit(request)
    if int(length) > limit:
        return json_error_for(
            request,
            ServiceError(
                f"request body is {length} bytes; the limit is {limit} ({name})",
                code="body_too_large",
                status=413,
            ),
        )
    return None


# A batch input file's upload may be up to BATCH_MAX_FILE_BYTES, plus the multipart framing;
# so may an Anthropic Message Batch, whose requests come in its JSON body.
UPLOAD_PATHS, MULTIPART_ALLOWANCE = ("/v1/files", "/v1/messages/batches"), 64 * 1024


def _limit(request) -> tuple[int, str]:
    if request.path in UPLOAD_PATHS and request.method == "POST":
        return settings.BATCH_MAX_FILE_BYTES + MULTIPART_ALLOWANCE, "BATCH_MAX_FILE_BYTES"
    return settings.MAX_REQUEST_BODY_BYTES, "MAX_REQUEST_BODY_BYTES"


class _BothWays:
    """A middleware that is async under daphne and sync under the test client: a sync one
    would pin a thread for every waiting view."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)


class BodySizeLimitMiddleware(_BothWays):
    """413 before a byte of an oversize body is read. Async-capable, so waiting views stay
    async end to end under daphne (a sync middleware would pin a thread for every wait)."""

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return _too_large(request) or self.get_response(request)

    async def __acall__(self, request):
        return _too_large(request) or await self.get_response(request)

    def process_exception(self, request, exception):
        """Redis outages outside DRF views (metrics, dashboard) are a 503 too, never a 500."""
        import redis

        from sop_llm.core.errors import redis_unavailable

        if isinstance(exception, redis.ConnectionError | redis.TimeoutError):
            return json_error_for(request, redis_unavailable())
        return None


# Scripts only from our own static files: no inline script, no inline handlers (what a
# tenant's string would need to run in an admin's page if it ever reached the DOM as markup).
# Inline styles stay allowed: Swagger UI sets them, and a style cannot run code.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)


def _secured(response):
    response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.setdefault("X-Content-Type-Options", "nosniff")  # JSON is never sniffed
    return response


class SecurityHeadersMiddleware(_BothWays):
    """The CSP on every response (pages and the JSON a browser might open alike)."""

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return _secured(self.get_response(request))

    async def __acall__(self, request):
        return _secured(await self.get_response(request))
