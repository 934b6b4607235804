from django.urls import path
from rest_framework.routers import SimpleRouter

from tasks.api.views import DeadLetterList, DeadLetterReplay, TaskViewSet, task_create_view

router = SimpleRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="tasks")
urlpatterns = [
    path("tasks", task_create_view, name="tasks-list"),
    *router.urls,
    path("webhooks/dead-letters", DeadLetterList.as_view(), name="webhooks-dead"),
    path("webhooks/dead-letters/replay", DeadLetterReplay.as_view(), name="webhooks-replay"),
]
