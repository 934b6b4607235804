import redis

from sop_llm.errors import ServiceError, json_error, redis_unavailable


class BodySizeLimitMiddleware:
    """413 before a byte of an oversize body is read; 503 for Redis outages outside DRF."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.MAX_REQUEST_BODY_BYTES:
            return json_error(
                ServiceError(
                    f"request body is {length} bytes; the limit is "
                    f"{settings.MAX_REQUEST_BODY_BYTES} (MAX_REQUEST_BODY_BYTES)",
                    code="body_too_large",
                    status=413,
                )
            )
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, redis.ConnectionError | redis.TimeoutError):
            return json_error(redis_unavailable())
        return None
