from django.urls import path

from monitor import views

urlpatterns = [
    path("monitor/status", views.Status.as_view(), name="monitor-status"),
    path("monitor/queue", views.Queue.as_view(), name="monitor-queue"),
    path("monitor/logs", views.Logs.as_view(), name="monitor-logs"),
    path("monitor/stats", views.Stats.as_view(), name="monitor-stats"),
    path("rq/stats", views.RqStats.as_view(), name="rq-stats"),
]
