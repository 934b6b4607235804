"""ASGI entry point for daphne: HTTP goes to Django; WebSocket routes join in monitor/."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sop_llm.settings")

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

application = ProtocolTypeRouter({"http": get_asgi_application()})
