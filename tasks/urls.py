from rest_framework.routers import SimpleRouter

from tasks.views import TaskViewSet

router = SimpleRouter(trailing_slash=False)
router.register("tasks", TaskViewSet, basename="tasks")
urlpatterns = router.urls
