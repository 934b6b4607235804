from django.urls import path
from rest_framework.routers import SimpleRouter

from tasks.views import DeadLetterList, DeadLetterReplay, TaskViewSet

router = SimpleRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="tasks")
urlpatterns = [
    *router.urls,
    path("webhooks/dead-letters", DeadLetterList.as_view(), name="webhooks-dead"),
    path("webhooks/dead-letters/replay", DeadLetterReplay.as_view(), name="webhooks-replay"),
]
