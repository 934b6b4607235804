"""ASGI entry point for daphne: HTTP goes to Django; WebSocket routes join in monitor/."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")

import django  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

django.setup(set_prefix=False)  # before the consumers are imported

from sop_llm.core.request_threads import PooledThreadsASGIHandler  # noqa: E402

django_http = PooledThreadsASGIHandler()  # Django's, its request threads pooled

import sys  # noqa: E402

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from monitor.consumers import MonitorConsumer  # noqa: E402


def _reason_phrases() -> None:
    """ASGI carries no reason phrase, so daphne's Twisted takes it from its own table, which
    lacks 429, 422, 431 ... and sends `429 Unknown Status`: complete it from Python's."""
    from http import HTTPStatus

    try:
        from twisted.web._responses import RESPONSES
    except ImportError:  # served by another ASGI server
        return
    for status in HTTPStatus:
        RESPONSES.setdefault(status.value, status.phrase.encode())


_reason_phrases()

if settings.API_KEYS_GENERATED:  # only the process that takes keys needs to say it
    key = settings.API_KEYS[0]
    print(
        f"SOP_LLM_API_KEYS is not set: this process accepts the generated key {key}",
        file=sys.stderr,
    )

application = ProtocolTypeRouter(
    {
        # Static files (Swagger UI's assets) served by the app: no extra web server needed.
        "http": ASGIStaticFilesHandler(django_http),
        "websocket": URLRouter([path("ws/monitor", MonitorConsumer.as_asgi())]),
    }
)
