from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"

    def ready(self) -> None:
        # Features hook into the task core here, the one place that knows them all.
        from tasks.batches.hooks import batch_hooks_register

        batch_hooks_register()
