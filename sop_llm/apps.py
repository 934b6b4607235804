from django.apps import AppConfig


class SopLlmConfig(AppConfig):
    name = "sop_llm"

    def ready(self) -> None:
        from sop_llm.core import schema  # noqa: F401 -- registers the OpenAPI auth extension
