from django.apps import AppConfig


class ModelsGpuConfig(AppConfig):
    name = "models_gpu"
