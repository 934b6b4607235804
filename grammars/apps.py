from django.apps import AppConfig


class GrammarsConfig(AppConfig):
    name = "grammars"
