from django.apps import AppConfig


class SopLlmConfig(AppConfig):
    name = "sop_llm"

    def ready(self) -> None:
        from sop_llm.core import schema  # noqa: F401 -- registers the OpenAPI auth extension

        _no_database_hooks()


def _no_database_hooks() -> None:
    """Django's ASGI handler sends request_started through sync_to_async whenever a sync
    receiver listens: the database's two, which have nothing to do without a database, cost
    every request a thread start and a hop. Nothing of ours lives in one (settings)."""
    from django.conf import settings
    from django.core import signals
    from django.db import close_old_connections, reset_queries

    if all(db["ENGINE"] == "django.db.backends.dummy" for db in settings.DATABASES.values()):
        signals.request_started.disconnect(reset_queries)
        signals.request_started.disconnect(close_old_connections)
